"""`digest schedule`: the long-running process, an APScheduler 3 BlockingScheduler.

APScheduler only wakes the process up; `run_due` decides from the database what is due, so
this process and a cron `digest run-due` (or a second scheduler) never do a slot twice. Jobs:

- `build`: at every slot minus `[schedule] build_lead_hours`;
- `send`: at every slot (a CronTrigger in the publication's timezone, DST resolved as cron
  does: digest.schedule.slots);
- `watch`: at start (a slot missed while the process was down is sent if still inside its
  window, skipped after it) and then every minute (an approval after the slot, a send window
  that closed, a send to continue).

The jobs live in APScheduler's memory job store, made from the configuration at start:
APScheduler 3 forbids sharing a job store between schedulers, and what is due and what ran is
in our own tables anyway. One worker thread runs them one at a time (coalesced, one instance
each, misfire grace of the send window: a machine that slept through a slot catches up).
SIGTERM or Ctrl-C stops it cleanly: no new step starts, a send stops after the batch in hand
(the next run continues it), and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import EmailBackend
from digest.config import Settings
from digest.errors import DigestError
from digest.schedule.due import OffsetClock, run_due
from digest.schedule.slots import SlotTrigger, slots_of

log = logging.getLogger("digest.schedule")

WATCH_EVERY = timedelta(minutes=1)


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave BlockingScheduler.start()."""


class Service:
    """The scheduler and its jobs; `run()` blocks until SIGTERM or SIGINT."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        clock: OffsetClock,
        *,
        backend: EmailBackend | None = None,
        config: str | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.clock = clock
        self.backend = backend
        self.config = config
        self.slots = slots_of(settings)
        self.stopping = threading.Event()

    def run(self) -> None:
        scheduler = self._scheduler()
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            scheduler.start()
        except _Stop:
            pass
        finally:
            for sig in handlers:
                signal.signal(sig, self._on_second_signal)
            if scheduler.running:
                scheduler.shutdown(wait=True)  # the step in hand ends (a send: after its batch)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        log.info("schedule stopped", extra={"job": "stop"})

    def _scheduler(self) -> Any:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        tz = self.settings.publication.tz
        grace = self.settings.newsletter.send_window_hours * 3600
        scheduler = BlockingScheduler(
            timezone=tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        )
        lead = timedelta(hours=self.settings.schedule.build_lead_hours)
        offset = self.clock.offset
        jobs = {
            "build": SlotTrigger(self.slots, -lead, offset),
            "send": SlotTrigger(self.slots, timedelta(0), offset),
        }
        for name, trigger in jobs.items():
            scheduler.add_job(self._job, trigger, args=[name], id=name, name=name)
        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=WATCH_EVERY.total_seconds(), timezone=tz),
            args=["watch"],
            id="watch",
            name="watch",
            next_run_time=datetime.now(tz),  # at once: catch up with what the stop missed
        )
        self._announce(lead)
        return scheduler

    def _announce(self, lead: timedelta) -> None:
        s = self.settings.schedule
        now = self.clock()
        slot = self.slots.after(now)
        log.info(
            "schedule started: cron %r in %s, approval %s, build %s h ahead; next slot %s "
            "(build from %s); SIGTERM or Ctrl-C stops",
            s.cron,
            self.settings.publication.timezone,
            s.approval,
            s.build_lead_hours,
            self.slots.local(slot),
            self.slots.local(slot - lead),
            extra={"job": "start", "slot": slot.astimezone(UTC).isoformat()},
        )

    def _job(self, name: str) -> None:
        """One wake-up: whatever is due now. A failure is logged, never the end of the
        process (the database may be back at the next run)."""
        if self.stopping.is_set():
            return
        try:
            report = run_due(
                self.factory,
                self.settings,
                clock=self.clock,
                backend=self.backend,
                stop=self.stopping.is_set,
                config=self.config,
            )
        except DigestError as exc:
            log.error("job %s: %s", name, exc, extra={"job": name})
            return
        except Exception:
            log.exception("job %s failed", name, extra={"job": name})
            return
        level = logging.INFO if report.results or name != "watch" else logging.DEBUG
        log.log(
            level,
            "job %s ran: %d step(s) done or decided; next slot %s",
            name,
            len(report.results),
            self.slots.local(report.next_slot) if report.next_slot else "none",
            extra={"job": name},
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        log.info("%s received: stopping", signal.Signals(signum).name, extra={"job": "stop"})
        raise _Stop

    def _on_second_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()  # already stopping: let the step in hand end


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
