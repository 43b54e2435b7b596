"""The week rules `build` and `digest articles list`/`sources check` share
(digest/edition/options.py): the window an edition gathers from, and the window a week's name
stands for."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from digest.config import Settings
from digest.edition.options import edition_window, named_window, week_window

NY = ZoneInfo("America/New_York")  # the demo publication's timezone; window_days = 7


def test_the_edition_window_is_the_configured_days_before_now(settings: Settings) -> None:
    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert edition_window(settings, now) == week_window(now, NY, 7)
    assert edition_window(settings, now) == (datetime(2026, 11, 13, 9, 0, tzinfo=NY), now)


def test_no_name_is_the_window_ending_now(settings: Settings, now: datetime) -> None:
    assert named_window(None, settings, now) == edition_window(settings, now)


def test_an_iso_week_runs_monday_to_monday_local_time(settings: Settings, now: datetime) -> None:
    start, end = named_window("2026-w47", settings, now)
    assert start == datetime(2026, 11, 16, tzinfo=NY) and end == datetime(2026, 11, 23, tzinfo=NY)


def test_a_day_is_the_window_ending_as_that_day_ends(settings: Settings, now: datetime) -> None:
    start, end = named_window("2026-11-20", settings, now)
    assert end == datetime(2026, 11, 21, tzinfo=NY)
    assert start == datetime(2026, 11, 14, tzinfo=NY)


@pytest.mark.parametrize(
    ("name", "cutoff"),
    [
        ("2026-11-20T09:00", datetime(2026, 11, 20, 9, 0, tzinfo=NY)),  # local time, like --now
        ("2026-11-20T14:00Z", datetime(2026, 11, 20, 14, 0, tzinfo=UTC)),
    ],
)
def test_a_moment_is_the_window_a_build_then_would_gather(
    settings: Settings, now: datetime, name: str, cutoff: datetime
) -> None:
    assert named_window(name, settings, now) == edition_window(settings, cutoff.astimezone(UTC))


@pytest.mark.parametrize("name", ["last tuesday", "2026-W99", "2026-13-01", "2026-11-20T25:00"])
def test_a_name_it_cannot_read_says_which_forms_it_takes(
    settings: Settings, now: datetime, name: str
) -> None:
    with pytest.raises(ValueError) as caught:
        named_window(name, settings, now)
    assert str(caught.value) == f"{name!r}: expected 2026-W47, 2026-11-20 or 2026-11-20T09:00"
