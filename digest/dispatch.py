"""One claimed batch to the provider, with the ledger's discipline (design.md §3):

commit `submitted`, call the provider, record its answer. A batch the provider refuses for one
address (400) loses that address and the rest goes again; refused without a culprit it is split
in halves. 429, 5xx, timeouts and connection errors defer the batch with backoff (the provider's
Retry-After / X-RateLimit-Reset when it gave one) and hold the worker as long; after the retry
policy's last try the rows fail with the provider's reason. Bad credentials stop the send with
the rows back in `planned`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest import ledger
from digest import runtime as seam
from digest.backends.base import (
    BackendConfigError,
    Batch,
    EmailBackend,
    PermanentError,
    Recipient,
    RecipientStatus,
    TransientError,
)
from digest.errors import DeliveryError
from digest.ledger import Outcome
from digest.models import ACCEPTED, CLAIMED, DEFERRED, FAILED, PLANNED, SUBMITTED
from digest.retry import RetryPolicy
from digest.runtime import Runtime, Writes
from digest.throttle import Throttle

log = logging.getLogger(__name__)
_STATUS = {"accepted": ACCEPTED, "rejected": FAILED, "failed": FAILED, "deferred": DEFERRED}


@dataclass(frozen=True)
class Job:
    """A composed batch on its way to the provider, and which try this is for its rows."""

    batch: Batch
    attempt: int


class Dispatcher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        backend: EmailBackend,
        policy: RetryPolicy,
        throttle: Throttle,
        runtime: Runtime,
        counts: Counter[str],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.writes = Writes(factory)
        self.backend = backend
        self.policy = policy
        self.throttle = throttle
        self.runtime = runtime
        self.counts = counts
        self.progress = progress

    def deliver(self, job: Job) -> None:
        self.throttle.acquire(len(job.batch.recipients))
        self._submit(job.batch, job.attempt)

    def release(self, job: Job) -> None:
        """A claimed batch that will not be sent now: back to planned (never tried)."""
        with self.writes.transaction() as session:
            ledger.move(session, job.batch.batch_id, CLAIMED, PLANNED, self.runtime.clock())

    def _submit(self, batch: Batch, attempt: int) -> None:
        """Commit `submitted`, then (and only then) call the provider."""
        with self.writes.transaction() as session:
            ledger.move(session, batch.batch_id, CLAIMED, SUBMITTED, self.runtime.clock())
        seam.checkpoint("submitted")
        try:
            statuses = self.backend.send_batch(batch)
        except PermanentError as exc:
            self._refused(batch, attempt, exc)
        except TransientError as exc:
            self._transient(batch, attempt, exc)
        except BackendConfigError as exc:
            with self.writes.transaction() as session:  # nothing was sent: back to the queue
                ledger.move(session, batch.batch_id, SUBMITTED, PLANNED, self.runtime.clock())
            raise DeliveryError(str(exc)) from None
        else:
            self._record(batch, attempt, statuses)

    def _record(self, batch: Batch, attempt: int, statuses: Sequence[RecipientStatus]) -> None:
        now = self.runtime.clock()
        outcomes = [self._outcome(s, attempt) for s in statuses]
        with self.writes.transaction() as session:
            ledger.record(session, batch.batch_id, len(batch.recipients), outcomes, now)
        seam.checkpoint("recorded")
        done = Counter(o.status for o in outcomes)
        self.counts.update(done)
        if self.progress:
            self.progress(done[ACCEPTED] + done[FAILED])

    def _outcome(self, status: RecipientStatus, attempt: int) -> Outcome:
        final = _STATUS[status.status]
        if final != DEFERRED:
            return Outcome(status.delivery_id, final, status.provider_id, status.reason)
        if self.policy.gives_up(attempt):
            reason = f"gave up after {attempt} tries: {status.reason}"
            return Outcome(status.delivery_id, FAILED, reason=reason)
        wait = self.policy.delay(attempt, self.runtime.rng, status.retry_after)
        not_before = self.runtime.clock() + timedelta(seconds=wait)
        return Outcome(status.delivery_id, DEFERRED, reason=status.reason, not_before=not_before)

    def _refused(self, batch: Batch, attempt: int, exc: PermanentError) -> None:
        """400/413: drop the blamed recipient (or split in halves) and send the rest again."""
        recipients = list(batch.recipients)
        if len(recipients) == 1:
            status = RecipientStatus(recipients[0].delivery_id, "rejected", reason=str(exc))
            self._record(batch, attempt, [status])
            return
        now = self.runtime.clock()
        if exc.bad_index is not None and 0 <= exc.bad_index < len(recipients):
            parts = [[recipients.pop(exc.bad_index)], recipients]
        else:
            half = len(recipients) // 2
            parts = [recipients[:half], recipients[half:]]
        with self.writes.transaction() as session:  # refused whole: none of it was sent
            ledger.move(session, batch.batch_id, SUBMITTED, CLAIMED, now)
            jobs = [_part(session, batch, part, now) for part in parts]
        log.info("batch refused (%s); sending it in parts of %s", exc, [len(p) for p in parts])
        for part_batch in jobs:
            self._submit(part_batch, attempt)

    def _transient(self, batch: Batch, attempt: int, exc: TransientError) -> None:
        """429/5xx/timeout: defer the batch with backoff and hold this worker as long."""
        if exc.maybe_sent and not self.policy.retry_on_timeout:
            log.warning("%s: leaving %d recipients uncertain", exc, len(batch.recipients))
            return
        wait = self.policy.delay(attempt, self.runtime.rng, exc.retry_after)
        statuses = [
            RecipientStatus(r.delivery_id, "deferred", reason=str(exc), retry_after=wait)
            for r in batch.recipients
        ]
        self._record(batch, attempt, statuses)
        log.warning(
            "%s: pausing %.1f s (try %d of %d)", exc, wait, attempt, self.policy.max_attempts
        )
        self.throttle.pause(wait)


def _part(session: Session, batch: Batch, recipients: Sequence[Recipient], now: object) -> Batch:
    ids = [r.delivery_id for r in recipients]
    batch_id = ledger.retag(session, ids, now)  # type: ignore[arg-type]
    return dataclasses.replace(batch, batch_id=batch_id, recipients=list(recipients))
