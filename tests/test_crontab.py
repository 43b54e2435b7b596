"""`[schedule] cron` is read as crontab(5) reads it, whatever APScheduler would make of it:
Sunday is 0 or 7, a day of the month and a day of the week cannot both be restricted, and a
line that never happens is refused. Each mistake is one line naming the key (exit 2)."""

from __future__ import annotations

import re

import pytest

from digest.config import load_settings
from digest.crontab import CrontabError, parse
from digest.errors import ConfigError
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("line", "days"),
    [
        ("0 9 * * 5", {5}),  # cron's 5 is Friday (APScheduler 3 would read Saturday)
        ("0 9 * * fri", {5}),
        ("0 9 * * 0", {0}),
        ("0 9 * * 7", {0}),
        ("0 9 * * 1-5", {1, 2, 3, 4, 5}),
        ("0 9 * * mon-fri", {1, 2, 3, 4, 5}),
        ("0 9 * * 5-7", {5, 6, 0}),
        ("0 9 * * */2", {0, 2, 4, 6}),
        ("0 9 * * *", set(range(7))),
    ],
)
def test_days_of_the_week_are_crons(line: str, days: set[int]) -> None:
    assert parse(line).day_of_week == days


def test_apscheduler_gets_day_names_and_explicit_lists() -> None:
    fields = parse("*/15 9-11 * * 1-5").apscheduler_fields()
    assert fields == {
        "minute": "0,15,30,45",
        "hour": "9,10,11",
        "day": "*",
        "month": "*",
        "day_of_week": "mon,tue,wed,thu,fri",
    }
    assert parse("0 9 * * 0,6").apscheduler_fields()["day_of_week"] == "sun,sat"
    assert parse("0 7 1,15 jan-mar *").apscheduler_fields()["month"] == "1,2,3"
    assert parse("5/20 * * * *").minute == {5, 25, 45}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 7 * *", "'0 7 * *' has 4 field(s); a crontab line has 5"),
        ("0 7 * * mon fri", "has 6 field(s)"),
        ("61 7 * * *", "minute 61 is outside 0-59"),
        ("0 24 * * *", "hour 24 is outside 0-23"),
        ("0 7 0 * *", "day of month 0 is outside 1-31"),
        ("0 7 * 13 *", "month 13 is outside 1-12"),
        ("0 7 * * 8", "day of week 8 is outside 0-7"),
        ("0 7 * * funday", "day of week 'funday' is not a number (or a name: sun, mon"),
        ("0 7-5 * * *", "hour '7-5': a range runs from low to high (7 > 5)"),
        ("*/0 7 * * *", "a step must be at least 1"),
        ("0 7 1 * mon", "restricts both the day of the month and the day of the week"),
        ("0 7 30 feb *", "never happens"),
        ("0 7 ? * *", "day of month '?': cannot read '?'"),
    ],
)
def test_a_bad_line_says_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(CrontabError, match=re.escape(message)):
        parse(line)


def test_a_bad_cron_in_the_config_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(ROOT / "digest.toml", schedule={"cron": "0 9 * * mon fri"})
    message = str(info.value)
    assert message.endswith(
        "digest.toml: [schedule] cron: Value error, '0 9 * * mon fri' has 6 field(s); a "
        'crontab line has 5: minute hour day-of-month month day-of-week, e.g. "0 7 * * mon"'
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"approval": "sometimes"}, "[schedule] approval: Input should be 'require' or 'auto'"),
        ({"build_lead_hours": -1}, "[schedule] build_lead_hours: Input should be greater"),
        ({"notify": ["editor"]}, "[schedule] notify: Value error, not an email address: 'editor'"),
        ({"cron": "*/30 * * * *"}, "[schedule] cron: Value error, an edition at most once an hour"),
    ],
)
def test_other_schedule_keys_are_checked(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(ROOT / "digest.toml", schedule=values)


def test_the_cron_is_stored_with_single_spaces() -> None:
    settings = load_settings(ROOT / "digest.toml", schedule={"cron": " 0  9 *  * fri "})
    assert settings.schedule.cron == "0 9 * * fri"
