"""Slots from the cron line in the publication's timezone, DST resolved as cron does: a time
the clocks skip runs when they jump, a time they repeat runs once, at the first; and the
APScheduler trigger that fires them (shifted for the build, moved for a --now clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.errors import ConfigError
from digest.schedule.slots import Slots, SlotTrigger, slots_of

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_weekly_slot_in_new_york() -> None:
    slots = Slots("0 9 * * fri", NY)
    found = list(slots.between(utc(2026, 11, 13), utc(2026, 11, 28)))
    assert found == [utc(2026, 11, 13, 14), utc(2026, 11, 20, 14), utc(2026, 11, 27, 14)]
    assert [slots.local(s) for s in found][:1] == ["2026-11-13 09:00 EST"]


def test_the_local_time_holds_across_a_dst_change() -> None:
    slots = Slots("0 9 * * fri", NY)
    assert list(slots.between(utc(2026, 10, 30), utc(2026, 11, 7))) == [
        utc(2026, 10, 30, 13),  # 09:00 EDT
        utc(2026, 11, 6, 14),  # 09:00 EST
    ]


def test_spring_forward_a_0230_slot_that_does_not_exist_runs_at_0300() -> None:
    """2026-03-08 in New York: 02:00 EST is followed by 03:00 EDT; 02:30 never happens."""
    slots = Slots("30 2 * * *", NY)
    found = list(slots.between(utc(2026, 3, 7), utc(2026, 3, 10)))
    assert found == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]
    assert slots.local(found[1]) == "2026-03-08 03:00 EDT"


def test_fall_back_a_slot_in_the_repeated_hour_runs_once_at_the_first() -> None:
    """2026-11-01 in New York: 01:00-01:59 happens twice (EDT, then EST)."""
    slots = Slots("30 1 * * *", NY)
    found = list(slots.between(utc(2026, 10, 31), utc(2026, 11, 3)))
    assert found == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert slots.local(found[1]) == "2026-11-01 01:30 EDT"
    assert slots.after(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)  # not 06:30 on the 1st


def test_a_0230_slot_on_the_fall_back_day_runs_once() -> None:
    """In New York 02:30 is not repeated (the clocks go from 01:59 EDT back to 01:00 EST):
    the slot is 02:30 EST, once."""
    slots = Slots("30 2 * * *", NY)
    assert list(slots.between(utc(2026, 11, 1), utc(2026, 11, 1, 23))) == [utc(2026, 11, 1, 7, 30)]


def test_hourly_slots_skip_the_repeated_hour_and_close_the_gap() -> None:
    slots = Slots("0 * * * *", NY)
    autumn = [slots.local(s) for s in slots.between(utc(2026, 11, 1, 4), utc(2026, 11, 1, 8))]
    assert autumn == [
        "2026-11-01 00:00 EDT",
        "2026-11-01 01:00 EDT",
        "2026-11-01 02:00 EST",
        "2026-11-01 03:00 EST",
    ]
    spring = [slots.local(s) for s in slots.between(utc(2026, 3, 8, 5), utc(2026, 3, 8, 8))]
    assert spring == [
        "2026-03-08 00:00 EST",
        "2026-03-08 01:00 EST",
        "2026-03-08 03:00 EDT",
        "2026-03-08 04:00 EDT",
    ]


def test_a_half_hour_dst_zone_jumps_to_the_right_instant() -> None:
    """Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04."""
    slots = Slots("15 2 * * *", ZoneInfo("Australia/Lord_Howe"))
    day = list(slots.between(utc(2026, 10, 3, 12), utc(2026, 10, 4, 12)))
    assert [slots.local(s) for s in day] == ["2026-10-04 02:30 +11"]


def test_first_from_and_after() -> None:
    slots = Slots("0 9 * * fri", NY)
    assert slots.first_from(utc(2026, 11, 20, 14)) == utc(2026, 11, 20, 14)
    assert slots.after(utc(2026, 11, 20, 14)) == utc(2026, 11, 27, 14)


def test_no_cron_is_a_config_error(settings) -> None:
    with pytest.raises(ConfigError, match=r"\[schedule\] cron is not set: nothing is scheduled"):
        slots_of(settings)


def test_the_trigger_fires_the_slots_shifted_and_on_a_moved_clock() -> None:
    slots = Slots("0 9 * * fri", NY)
    build = SlotTrigger(slots, -timedelta(hours=24))
    first = build.get_next_fire_time(None, utc(2026, 11, 18))
    assert first == utc(2026, 11, 19, 14)
    assert build.get_next_fire_time(first, first) == utc(2026, 11, 26, 14)
    # A clock 3 days ahead of the real one (--now): the Friday slot fires 3 days earlier.
    ahead = SlotTrigger(slots, timedelta(0), offset=timedelta(days=3))
    assert ahead.get_next_fire_time(None, utc(2026, 11, 16)) == utc(2026, 11, 17, 14)
    assert first.tzinfo is not None and str(build)
