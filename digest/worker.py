"""One send worker: claim a batch, commit, mark it submitted, commit, call the provider, record.

Several workers (processes, possibly on several machines) can share a send on PostgreSQL; the
ledger's SKIP LOCKED claim keeps them apart. A refused batch is retried with backoff (deferred
rows with `not_before`), split when the provider blames one address, and given up after the
retry policy's last attempt with the provider's reason kept.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest import ledger
from digest.backends.base import (
    BackendConfigError,
    Batch,
    EmailBackend,
    PermanentError,
    Recipient,
    RecipientStatus,
    TransientError,
)
from digest.compose import Composer
from digest.config import Settings
from digest.db import transaction
from digest.errors import DeliveryError
from digest.ledger import Claimed, Outcome
from digest.models import ACCEPTED, CLAIMED, DEFERRED, FAILED, PLANNED, SUBMITTED
from digest.retry import RetryPolicy
from digest.throttle import Throttle, day_start, warmup_cap

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=10)
# Longest nap while only deferred rows are left, so a cancel is noticed.
IDLE_NAP = 5.0
_STATUS = {"accepted": ACCEPTED, "rejected": FAILED, "failed": FAILED, "deferred": DEFERRED}


def checkpoint(point: str) -> None:
    """A seam for the crash tests: tests/crash_runner.py replaces it to SIGKILL the process at
    a named point (planned, claimed, submitted, recorded). Does nothing otherwise."""


@dataclass
class Runtime:
    """What a worker takes from the world, injectable so that tests neither wait nor guess."""

    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    # Asked before each batch: true asks the worker to stop (SIGTERM in `digest worker`).
    should_stop: Callable[[], bool] = field(default=lambda: False)


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
        self.factory = factory
        self.settings = settings
        self.backend = backend
        self.edition_id = edition_id
        self.composer = composer
        self.runtime = runtime
        self.progress = progress
        self.policy = RetryPolicy.from_settings(settings.delivery)
        self.throttle = Throttle.from_settings(
            settings.delivery, clock=runtime.monotonic, sleep=runtime.sleep
        )
        self.size = min(backend.max_batch, settings.delivery.batch_size)
        if settings.delivery.rate_per_second:
            # Never more in one go than a second's allowance.
            self.size = max(1, min(self.size, int(settings.delivery.rate_per_second)))
        self.report = WorkerReport()
        self.worker_id = 0
        self._beat = datetime.min.replace(tzinfo=UTC)
        self._sent_today: tuple[datetime, int] | None = None

    def run(self) -> WorkerReport:
        now = self.runtime.clock()
        with transaction(self.factory) as session:
            ledger.write_first(session)
            ledger.require_single_worker(
                session, self.edition_id, now, self.settings.delivery.worker_timeout
            )
            self.worker_id = ledger.register_worker(session, self.edition_id, now)
        try:
            with self.backend:
                self._loop()
        finally:
            with transaction(self.factory) as session:
                ledger.stop_worker(session, self.worker_id, self.runtime.clock())
        return self.report

    def _loop(self) -> None:
        while True:
            if self._stop_reason():
                return
            size = self._allowance()
            if size == 0:
                self.report.stopped = "warm-up"
                return
            self.throttle.acquire(size)
            now = self.runtime.clock()
            with transaction(self.factory) as session:
                rows, skipped = ledger.claim(session, self.edition_id, self.worker_id, size, now)
                self._heartbeat(session, now)
            if skipped:
                self.report.counts["skipped"] += skipped
                if self.progress:
                    self.progress(skipped)
            if rows:
                checkpoint("claimed")
                self._send(rows)
            elif not self._wait_for_deferred():
                return

    def _stop_reason(self) -> bool:
        if self.runtime.should_stop():
            self.report.stopped = "stopped"
            return True
        with self.factory() as session:
            if ledger.is_cancelled(session, self.edition_id):
                self.report.stopped = "cancelled"
                return True
        return False

    def _heartbeat(self, session: Session, now: datetime) -> None:
        if now - self._beat >= HEARTBEAT_EVERY:
            ledger.heartbeat(session, self.worker_id, now)
            self._beat = now

    def _allowance(self) -> int:
        """The batch size the warm-up ramp still allows today (the full size without a ramp)."""
        now = self.runtime.clock()
        cap = warmup_cap(self.settings.delivery, now.date())
        if cap is None:
            return self.size
        day = day_start(now)
        if self._sent_today is None or self._sent_today[0] != day:
            with self.factory() as session:
                self._sent_today = (day, ledger.sent_since(session, day))
        return max(0, min(self.size, cap - self._sent_today[1]))

    def _wait_for_deferred(self) -> bool:
        """Nothing claimable now: nap until the next deferred row is due; False when none."""
        with self.factory() as session:
            due = ledger.next_due(session, self.edition_id)
        if due is None:
            return False
        wait = (due - self.runtime.clock()).total_seconds()
        self.runtime.sleep(min(max(wait, 0.0), IDLE_NAP))
        return True

    # --- one batch ----------------------------------------------------------------------------

    def _send(self, rows: Sequence[Claimed]) -> None:
        batch = self.composer.batch(rows)
        variants = self.report.variants
        variants[rows[0].variant] = variants.get(rows[0].variant, 0) + len(rows)
        self.report.batches += 1
        if self._sent_today is not None:
            self._sent_today = (self._sent_today[0], self._sent_today[1] + len(rows))
        self._submit(batch, CLAIMED)

    def _submit(self, batch: Batch, frm: str) -> None:
        """Commit `submitted`, then (and only then) call the provider."""
        ids = [r.delivery_id for r in batch.recipients]
        with transaction(self.factory) as session:
            ledger.move(session, ids, frm, SUBMITTED, self.runtime.clock())
        checkpoint("submitted")
        try:
            statuses = self.backend.send_batch(batch)
        except PermanentError as exc:
            self._refused(batch, exc)
        except TransientError as exc:
            self._transient(batch, exc)
        except BackendConfigError as exc:
            with transaction(self.factory) as session:  # nothing was sent: back to the queue
                ledger.move(session, ids, SUBMITTED, PLANNED, self.runtime.clock())
            raise DeliveryError(str(exc)) from None
        else:
            self._record(batch, statuses)

    def _record(
        self, batch: Batch, statuses: Sequence[RecipientStatus], attempt: int | None = None
    ) -> None:
        now = self.runtime.clock()
        attempt = attempt or self._attempt(batch)
        outcomes = [self._outcome(s, attempt, now) for s in statuses]
        with transaction(self.factory) as session:
            ledger.record(session, outcomes, now)
        checkpoint("recorded")
        done = Counter(o.status for o in outcomes)
        self.report.counts.update(done)
        if self.progress:
            self.progress(done[ACCEPTED] + done[FAILED])

    def _outcome(self, status: RecipientStatus, attempt: int, now: datetime) -> Outcome:
        final = _STATUS[status.status]
        if final == DEFERRED:
            if self.policy.gives_up(attempt):
                reason = f"gave up after {attempt} tries: {status.reason}"
                return Outcome(status.delivery_id, FAILED, reason=reason)
            wait = self.policy.delay(attempt, self.runtime.rng, status.retry_after)
            return Outcome(
                status.delivery_id,
                DEFERRED,
                reason=status.reason,
                not_before=now + timedelta(seconds=wait),
            )
        return Outcome(status.delivery_id, final, status.provider_id, status.reason)

    def _attempt(self, batch: Batch) -> int:
        """This try's number for the batch (1 for a first send)."""
        with self.factory() as session:
            ids = [r.delivery_id for r in batch.recipients]
            return ledger.attempts_of(session, ids) + 1

    def _refused(self, batch: Batch, exc: PermanentError) -> None:
        """400/413: drop the blamed recipient (or split in halves) and send the rest again."""
        recipients = list(batch.recipients)
        if len(recipients) == 1:
            status = RecipientStatus(recipients[0].delivery_id, "rejected", reason=str(exc))
            self._record(batch, [status])
            return
        with transaction(self.factory) as session:  # refused whole: none of it was sent
            ledger.move(
                session,
                [r.delivery_id for r in recipients],
                SUBMITTED,
                CLAIMED,
                self.runtime.clock(),
            )
        if exc.bad_index is not None and 0 <= exc.bad_index < len(recipients):
            bad = recipients.pop(exc.bad_index)
            parts = [[bad], recipients]
        else:
            half = len(recipients) // 2
            parts = [recipients[:half], recipients[half:]]
        log.info(
            "batch refused (%s); sending it again in parts of %s", exc, [len(p) for p in parts]
        )
        for part in parts:
            self._submit(_with_recipients(batch, part), CLAIMED)

    def _transient(self, batch: Batch, exc: TransientError) -> None:
        """429/5xx/timeout: defer the batch with backoff and hold this worker as long."""
        if exc.maybe_sent and not self.policy.retry_on_timeout:
            log.warning("%s: leaving %d recipients uncertain", exc, len(batch.recipients))
            return
        attempt = self._attempt(batch)
        wait = self.policy.delay(attempt, self.runtime.rng, exc.retry_after)
        statuses = [
            RecipientStatus(r.delivery_id, "deferred", reason=str(exc), retry_after=wait)
            for r in batch.recipients
        ]
        self._record(batch, statuses, attempt)
        log.warning(
            "%s: pausing %.1f s (try %d of %d)", exc, wait, attempt, self.policy.max_attempts
        )
        self.throttle.pause(wait)


def _with_recipients(batch: Batch, recipients: Sequence[Recipient]) -> Batch:
    return dataclasses.replace(batch, recipients=list(recipients))
