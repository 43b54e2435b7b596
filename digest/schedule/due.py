"""What is due now: the one core function behind `digest schedule` and `digest run-due`.

`run_due` looks at the slots around `now` and at what the database says was done for each,
and does what is due, each step under its claim (digest.schedule.claims):

- **build**, from `build_lead_hours` before the slot: the draft whose cut-off is the slot, and
  a note to staff with its articles and its preflight (under `require`, also after the slot
  when no edition was built yet; under `auto` the send step builds it then);
- **send**, from the slot until the send window closes: an approved edition is sent; under
  `auto` the draft is first rebuilt, preflighted and approved by "digest (auto)"; under
  `require` a draft waits for approval (staff are told once);
- **close**, once the window has closed: whatever was not sent is skipped, with the reason on
  the edition and in a note to staff; a send stopped by SIGTERM is continued whatever the hour.

The clock is a parameter: every decision is taken from it and from the database, never from
memory, so a restart, a second scheduler or a cron run all reach the same decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import EmailBackend
from digest.config import Settings
from digest.gather import Fetcher
from digest.schedule import claims
from digest.schedule.slots import Slots, slots_of
from digest.store.models import (
    APPROVED,
    DRAFT,
    RUN_FAILED,
    RUN_FINAL,
    RUN_RUNNING,
    STEP_BUILD,
    STEP_SEND,
    Edition,
    ScheduleRun,
)

log = logging.getLogger("digest.schedule")

Clock = Callable[[], datetime]
CLOSE = "close"


def real_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OffsetClock:
    """The real clock moved by `offset`: `--now` says where it starts, then it runs at the
    real clock's speed (so a rehearsal or a test waits seconds, not a week, for a slot)."""

    offset: timedelta = timedelta(0)

    @classmethod
    def starting_at(cls, moment: datetime | None) -> OffsetClock:
        return cls(timedelta(0) if moment is None else moment - datetime.now(UTC))

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _never() -> bool:
    return False


@dataclass
class StepResult:
    """What one step did for one slot, as printed, logged and recorded."""

    slot: datetime
    step: str
    state: str
    message: str
    edition_id: int | None = None
    exit_code: int = 0
    told: list[str] = field(default_factory=list)
    note_error: str | None = None
    # Looked at again and unchanged (still waiting for approval): news to nobody.
    repeat: bool = False


@dataclass
class DueReport:
    now: datetime
    results: list[StepResult] = field(default_factory=list)
    next_slot: datetime | None = None

    @property
    def exit_code(self) -> int:
        """0 when everything due was done or decided; a failure's code otherwise."""
        return next((r.exit_code or 1 for r in self.results if r.state == RUN_FAILED), 0)

    @property
    def news(self) -> list[StepResult]:
        """The results worth printing: not the unchanged looks at a waiting step."""
        return [r for r in self.results if not r.repeat]


@dataclass
class Run:
    """One call of run_due: its settings, clock, helpers, and what it told staff so far."""

    factory: sessionmaker[Session]
    settings: Settings
    slots: Slots
    clock: Clock
    now: datetime
    owner: str
    backend: EmailBackend | None = None
    fetcher: Fetcher | None = None
    stop: Callable[[], bool] = _never
    config: str | None = None
    told: set[datetime] = field(default_factory=set)

    @property
    def lead(self) -> timedelta:
        return timedelta(hours=self.settings.schedule.build_lead_hours)

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.settings.newsletter.send_window_hours)

    @property
    def auto(self) -> bool:
        return self.settings.schedule.approval == "auto"

    @property
    def lookback(self) -> timedelta:
        """How far back a slot whose window closed is still looked at (a restart after a long
        stop): as far as a build reaches back for articles."""
        return timedelta(days=2 * self.settings.newsletter.window_days)


def run_due(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    clock: Clock = real_clock,
    backend: EmailBackend | None = None,
    fetcher: Fetcher | None = None,
    stop: Callable[[], bool] = _never,
    config: str | None = None,
) -> DueReport:
    """Do whatever is due at `clock()`; idempotent. `stop()` is asked before each step and
    by a send between batches (SIGTERM). `config` is the --config of worker processes."""
    from digest.schedule import steps

    slots = slots_of(settings)
    now = clock()
    run = Run(
        factory,
        settings,
        slots,
        clock,
        now,
        claims.owner_name(),
        backend=backend,
        fetcher=fetcher,
        stop=stop,
        config=config,
    )
    report = DueReport(now)
    actions = {STEP_BUILD: steps.build, STEP_SEND: steps.send, CLOSE: steps.close}
    for slot, step in plan(run):
        if stop():
            break
        result = actions[step](run, slot)
        if result is not None:
            report.results.append(result)
            _log(result, slots)
    report.next_slot = slots.after(now)
    return report


def plan(run: Run) -> list[tuple[datetime, str]]:
    """The steps worth trying now, slot by slot, from one read of the database; each is
    decided again under its claim."""
    now, window = run.now, run.window
    floor = now - window - run.lookback
    seen = _Seen.read(run.factory, floor, now + run.lead)
    todo: list[tuple[datetime, str]] = []
    for slot in run.slots.between(floor, now + run.lead):
        if now > slot + window:
            if seen.closing_due(slot, now):
                todo.append((slot, CLOSE))
            continue
        if seen.build_due(slot, now, run.lead, run.auto):
            todo.append((slot, STEP_BUILD))
        if now >= slot and seen.open(slot, STEP_SEND, now) and not seen.busy(slot, now):
            todo.append((slot, STEP_SEND))
    return todo


@dataclass
class _Seen:
    """The schedule's rows and the editions' statuses around now, read once per run."""

    runs: dict[tuple[datetime, str], ScheduleRun]
    statuses: dict[datetime, str]
    first_slot: datetime | None

    @classmethod
    def read(cls, factory: sessionmaker[Session], floor: datetime, ceiling: datetime) -> _Seen:
        with factory() as session:
            rows = session.scalars(select(ScheduleRun).where(ScheduleRun.slot >= floor))
            runs = {(r.slot, r.step): r for r in rows}
            found = session.execute(
                select(Edition.cutoff, Edition.status).where(
                    Edition.cutoff >= floor, Edition.cutoff <= ceiling
                )
            )
            statuses = {cutoff: status for cutoff, status in found}
            first = session.scalar(select(func.min(ScheduleRun.slot)))
        return cls(runs, statuses, first)

    def open(self, slot: datetime, step: str, now: datetime) -> bool:
        """No row yet, or one the next run takes again (waiting, interrupted, abandoned)."""
        row = self.runs.get((slot, step))
        if row is None or row.state in claims.RETAKEN:
            return True
        return row.state == RUN_RUNNING and row.updated_at < now - claims.STALE

    def busy(self, slot: datetime, now: datetime) -> bool:
        """The slot's build is under way in another process: the send waits for it (a
        second build of the same week would only lose the race)."""
        row = self.runs.get((slot, STEP_BUILD))
        return row is not None and row.state == RUN_RUNNING and row.updated_at >= now - claims.STALE

    def build_due(self, slot: datetime, now: datetime, lead: timedelta, auto: bool) -> bool:
        if now < slot - lead or not self.open(slot, STEP_BUILD, now):
            return False
        # From the slot on, a build is only for a slot with no edition under `require`
        # (under `auto` the send step builds it).
        return now < slot or (not auto and slot not in self.statuses)

    def closing_due(self, slot: datetime, now: datetime) -> bool:
        """A slot whose window closed with something left to record or finish."""
        row = self.runs.get((slot, STEP_SEND))
        if row is not None:
            return row.state not in RUN_FINAL and self.open(slot, STEP_SEND, now)
        status = self.statuses.get(slot)
        if status is not None:
            return status in (DRAFT, APPROVED)
        # No edition: missed, if the schedule already ran before it (not a new installation).
        tried = (slot, STEP_BUILD) in self.runs
        return tried or (self.first_slot is not None and self.first_slot < slot)


def _log(result: StepResult, slots: Slots) -> None:
    quiet = logging.DEBUG if result.repeat else logging.INFO
    level = {RUN_FAILED: logging.ERROR, "skipped": logging.WARNING}.get(result.state, quiet)
    log.log(
        level,
        "slot %s %s: %s: %s",
        slots.local(result.slot),
        result.step,
        result.state,
        result.message,
        extra={
            "slot": result.slot.isoformat(),
            "step": result.step,
            "state": result.state,
            "edition": result.edition_id,
            "told": result.told,
        },
    )
