"""One send worker: claim a batch (committed), compose it, hand it to the dispatcher.

Several workers (processes, possibly on several machines) can share a send on PostgreSQL; the
ledger's SKIP LOCKED claim keeps them apart. Within a worker, up to [delivery] concurrency
batches are in flight at once, each on a sender thread of its own, while the next is claimed
and composed (send/inflight.py). Each claim is checked against the cancel flag and the warm-up
cap first; each request against the rate limits.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, EmailBackend
from digest.config import Settings
from digest.ledger import registry, tally
from digest.send import changes, claims
from digest.send import runtime as seams
from digest.send.claims import ClaimedBatch
from digest.send.compose import Composer
from digest.send.dispatch import Dispatcher, Job
from digest.send.inflight import InFlight
from digest.send.retry import RetryPolicy
from digest.send.runtime import Runtime
from digest.send.throttle import Throttle, day_start, warmup_cap

__all__ = ["Runtime", "Worker", "WorkerReport", "checkpoint"]

HEARTBEAT_EVERY = timedelta(seconds=10)
SWITCH_INTERVAL = 0.001  # seconds; measured best for two threads in bench/send.py
# Longest nap while only deferred rows are left, so a cancel is noticed.
IDLE_NAP = 5.0


def checkpoint(point: str) -> None:
    seams.checkpoint(point)


def _quiet_collector() -> None:
    """A send allocates millions of short-lived strings and tuples, and Python's cycle
    collector ran every 700 allocations over every container alive: the start-up's modules,
    SQLAlchemy's and the templates' objects, none of them ever garbage (3% of a send's CPU).
    Those are frozen out of its passes, and the youngest generation is collected less often;
    the send's own cycles (sessions, tracebacks) are still collected."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def batch_size(settings: Settings, backend: EmailBackend) -> int:
    """Recipients per batch: the configured size, else the backend's largest; never more than
    the backend takes, nor more in one go than a rate window allows. A send is planned in
    batches of this size."""
    delivery = settings.delivery
    size = min(backend.max_batch, delivery.batch_size or backend.max_batch)
    for rate in Throttle.from_settings(delivery).rates:
        size = max(1, min(size, rate.limit))
    return size


def concurrency(settings: Settings, backend: EmailBackend) -> int:
    """Batches a worker has in flight at once: [delivery] concurrency, within the backend's
    own limit (SMTP connections, one outbox writer)."""
    return max(1, min(settings.delivery.concurrency, backend.max_concurrency))


@dataclass
class WorkerReport:
    counts: Counter[str] = field(default_factory=Counter)
    variants: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    stopped: str | None = None


class Worker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        backend: EmailBackend,
        edition_id: int,
        composer: Composer,
        runtime: Runtime,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        delivery = settings.delivery
        self.factory = factory
        self.settings = settings
        self.edition_id = edition_id
        self.composer = composer
        self.runtime = runtime
        self.progress = progress
        self.report = WorkerReport()
        throttle = Throttle.from_settings(delivery, clock=runtime.monotonic, sleep=runtime.sleep)
        self.dispatcher = Dispatcher(
            factory, backend, RetryPolicy.from_settings(delivery), throttle, runtime,
            self.report.counts, progress,
        )  # fmt: skip
        self.writes = self.dispatcher.writes  # shared: one writer at a time on SQLite
        self.backend = backend
        self.size = batch_size(settings, backend)
        self.width = concurrency(settings, backend)
        self.worker_id = 0
        self.changed: changes.Changed | None = None
        self._beat = datetime.min.replace(tzinfo=UTC)

    def run(self) -> WorkerReport:
        now = self.runtime.clock()
        with self.writes.transaction() as session:
            registry.write_first(session)
            registry.require_single_worker(
                session, self.edition_id, now, self.settings.delivery.worker_timeout
            )
            self.worker_id = registry.register_worker(session, self.edition_id, now)
            self.changed = changes.Changed.of_send(session, self.edition_id)
        switch, thresholds = sys.getswitchinterval(), gc.get_threshold()
        _quiet_collector()
        if self.width > 1:
            # The threads of one worker hand the GIL back and forth around every socket and
            # SQLite call; at the default 5 ms interval each hand-over can stall that long.
            sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            with self.backend:
                self._loop()
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
            sys.setswitchinterval(switch)
            try:
                with self.writes.transaction() as session:
                    registry.stop_worker(session, self.worker_id, self.runtime.clock())
            finally:
                self.writes.close()
        return self.report

    def _loop(self) -> None:
        d = self.dispatcher
        with InFlight[Job](d.deliver, d.release, self.width) as pipe:
            while True:
                pipe.reserve()  # waits while `width` batches are in flight and one waits
                pipe.check()
                size = 0 if self._stop_requested() else self._allowance()
                if size == 0:
                    pipe.unreserve()
                    if not self.report.stopped:
                        pipe.drain()  # what is in flight may come back deferred
                        self.report.stopped = self._cancelled() or self._capped()
                    return
                claimed = self._claim(size)  # None too when the send was cancelled
                if self.report.stopped:
                    pipe.unreserve()
                    return
                if claimed is not None and claimed.rows:
                    seams.checkpoint("claimed")
                    pipe.put(
                        Job(self._compose(claimed), claimed.batch, claimed.attempt, self.worker_id)
                    )
                    continue
                pipe.unreserve()
                if claimed is not None:
                    continue  # everyone in that batch had unsubscribed
                if pipe.busy():
                    pipe.drain()  # what is in flight may come back deferred
                elif not self._wait_for_deferred():
                    return

    def _claim(self, size: int) -> ClaimedBatch | None:
        """The next batch, unless the send was cancelled (checked in the same transaction)."""
        now = self.runtime.clock()
        with self.writes.transaction() as session:
            if registry.is_cancelled(session, self.edition_id):
                self.report.stopped = "cancelled"
                return None
            claimed = claims.claim(
                session, self.edition_id, self.worker_id, size, now, self.changed
            )
            self._heartbeat(session, now)
        if claimed is not None and claimed.skipped:
            self.dispatcher.count(Counter({"skipped": claimed.skipped}))
            if self.progress:
                self.progress(claimed.skipped)
        return claimed

    def _compose(self, claimed: ClaimedBatch) -> Batch:
        rows = claimed.rows
        variant = rows[0].variant
        self.report.variants[variant] = self.report.variants.get(variant, 0) + len(rows)
        self.report.batches += 1
        return self.composer.batch(rows, str(claimed.batch))

    def _stop_requested(self) -> bool:
        if self.runtime.should_stop():
            self.report.stopped = "stopped"
            return True
        return False

    def _cancelled(self) -> str | None:
        with self.factory() as session:
            return "cancelled" if registry.is_cancelled(session, self.edition_id) else None

    def _capped(self) -> str | None:
        """ "warm-up" when today's cap leaves rows for tomorrow; None when the send is done (a
        send that ends exactly at the cap was not stopped by it)."""
        with self.factory() as session:
            return "warm-up" if tally.pending(session, self.edition_id) else None

    def _heartbeat(self, session: Session, now: datetime) -> None:
        if now - self._beat >= HEARTBEAT_EVERY:
            registry.heartbeat(session, self.worker_id, now)
            self._beat = now

    def _allowance(self) -> int:
        """The batch size the warm-up ramp still allows today (the full size without a ramp).
        Counted in the database before every claim, so workers sharing a send share the cap
        (two that count at the same moment may pass it by a batch each)."""
        now = self.runtime.clock()
        cap = warmup_cap(self.settings.delivery, now.date())
        if cap is None:
            return self.size
        with self.factory() as session:
            sent = tally.sent_since(session, day_start(now))
        return max(0, min(self.size, cap - sent))

    def _wait_for_deferred(self) -> bool:
        """Nothing claimable now: nap until the next deferred row is due; False when none."""
        with self.factory() as session:
            due = tally.next_due(session, self.edition_id)
        if due is None:
            return False
        wait = (due - self.runtime.clock()).total_seconds()
        self.runtime.sleep(min(max(wait, 0.0), IDLE_NAP))
        return True
