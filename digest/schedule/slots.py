"""The slots: the moments the edition goes out, from `[schedule] cron` in the publication's
timezone.

APScheduler's CronTrigger walks the calendar; this module decides what a wall-clock time that
does not exist, or exists twice, means, as cron does: on the spring-forward day a 02:30 slot
(a time the clocks skip) is at the moment the clocks jump, 03:00; on the fall-back day a slot
in the repeated hour is at its first occurrence only. A slot is an instant (UTC): it is the
edition's cut-off, so the week's identity never depends on which process computed it.

`SlotTrigger` hands the same slots to APScheduler, shifted (the build runs `build_lead_hours`
before the slot) and moved onto a clock that may run ahead or behind the real one (`digest
schedule --now`, for rehearsals and tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from digest.config import Settings
from digest.crontab import parse
from digest.errors import ConfigError

_TICK = timedelta(microseconds=1)


class Slots:
    """The slots of one crontab line in one timezone."""

    def __init__(self, expression: str, tz: ZoneInfo) -> None:
        self.expression = expression
        self.tz = tz
        self._cron = CronTrigger(timezone=tz, **parse(expression).apscheduler_fields())

    def first_from(self, moment: datetime) -> datetime:
        """The first slot at or after `moment`."""
        probe = moment
        while True:
            candidate = self._cron.get_next_fire_time(None, probe.astimezone(self.tz))
            if candidate is None:  # parse() refuses a line that never happens
                raise ConfigError(f"[schedule] cron {self.expression!r} never happens")
            slot = _resolve(candidate, self.tz)
            if slot is not None and slot >= moment:
                return slot
            probe = candidate.astimezone(UTC) + _TICK

    def after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        return self.first_from(moment + _TICK)

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every slot from `start` to `end`, both included, in order."""
        slot = self.first_from(start)
        while slot <= end:
            yield slot
            slot = self.after(slot)

    def local(self, moment: datetime) -> str:
        """A moment as staff read it: the publication's wall clock and its zone's abbreviation."""
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M %Z}"


def slots_of(settings: Settings) -> Slots:
    """The configured slots; a ConfigError when nothing is scheduled."""
    cron = settings.schedule.cron
    if not cron:
        raise ConfigError(
            '[schedule] cron is not set: nothing is scheduled (e.g. cron = "0 7 * * mon" in '
            "digest.toml's [schedule] table, in the publication's timezone)"
        )
    return Slots(cron, settings.publication.tz)


def _resolve(candidate: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant a cron match on the wall clock stands for (UTC); None for the second pass
    through a repeated hour, which cron runs only once."""
    wall = candidate.replace(tzinfo=None)
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if not _exists(first):
        return _jump(second, first)  # fold=1 reads the gap with the later offset: earlier
    if first.utcoffset() != second.utcoffset() and candidate.fold == 1:
        return None
    return first.astimezone(UTC)


def _exists(moment: datetime) -> bool:
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


def _jump(before: datetime, after: datetime) -> datetime:
    """The instant the clocks jumped over a skipped wall time, between its two readings: the
    first second whose UTC offset is the new one."""
    tz = after.tzinfo
    low = int(before.astimezone(UTC).timestamp())
    high = int(after.astimezone(UTC).timestamp())
    new_offset = datetime.fromtimestamp(high, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler's view of the slots: each fires `lag` after its slot (negative: before),
    on a real clock that is `offset` behind the one digest reads (zero unless --now)."""

    def __init__(self, slots: Slots, lag: timedelta, offset: timedelta = timedelta(0)) -> None:
        self.slots = slots
        self.lag = lag
        self.offset = offset

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        shift = self.offset - self.lag  # real time -> the slot it stands for
        if previous_fire_time is not None:
            slot = self.slots.after(previous_fire_time + shift)
        else:
            slot = self.slots.first_from(now + shift)
        return (slot - shift).astimezone(self.slots.tz)

    def __str__(self) -> str:
        return f"slots[{self.slots.expression}, lag {self.lag}]"
