"""One claimed batch to the provider, with the ledger's discipline (docs/design.md §3):

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
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import (
    BackendConfigError,
    Batch,
    EmailBackend,
    PermanentError,
    Recipient,
    RecipientStatus,
    SameAnswer,
    TransientError,
    delivery_ids,
)
from digest.errors import DeliveryError
from digest.ledger import moves
from digest.ledger.moves import Outcome
from digest.send import runtime as seam
from digest.send.retry import RetryPolicy
from digest.send.runtime import Runtime, Writes
from digest.send.throttle import Throttle
from digest.store.models import ACCEPTED, CLAIMED, DEFERRED, FAILED, PLANNED, SUBMITTED

log = logging.getLogger(__name__)
_STATUS = {"accepted": ACCEPTED, "rejected": FAILED, "failed": FAILED, "deferred": DEFERRED}


@dataclass(frozen=True)
class Job:
    """A composed batch on its way to the provider: its number in the ledger (send_batches.id)
    and which try this is for its rows."""

    batch: Batch
    number: int
    attempt: int
    # The worker whose claim this is: the batch is sent only while that claim still holds.
    worker_id: int | None = None


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
        self._counting = threading.Lock()  # batches are recorded from several threads

    def count(self, settled: Counter[str]) -> None:
        """Add to the worker's counts (from the claiming thread and every sender thread)."""
        with self._counting:
            self.counts.update(settled)

    def deliver(self, job: Job) -> None:
        self.throttle.acquire(len(job.batch.recipients))
        self._submit(job)

    def release(self, job: Job) -> None:
        """A claimed batch that will not be sent now: back to planned (never tried)."""
        with self.writes.transaction() as session:
            self._move(session, job, CLAIMED, PLANNED)

    def _move(self, session: Session, job: Job, frm: str, to: str) -> bool:
        edition = job.batch.edition_id
        return moves.move(session, edition, job.number, frm, to, self.runtime.clock())

    def _submit(self, job: Job) -> None:
        """Commit `submitted`, then (and only then) call the provider. A batch that is no
        longer this worker's claim is not sent: a resume that took the worker for dead (a long
        Retry-After pause stops its heartbeat) released it, and whoever claims it next sends it."""
        with self.writes.transaction() as session:
            held = moves.move(
                session, job.batch.edition_id, job.number, CLAIMED, SUBMITTED,
                self.runtime.clock(), held_by=job.worker_id,
            )  # fmt: skip
        if not held:
            log.warning("batch %d is no longer this worker's claim; not sent", job.number)
            return
        seam.checkpoint("submitted")
        try:
            statuses = self.backend.send_batch(job.batch)
        except PermanentError as exc:
            self._refused(job, exc)
        except TransientError as exc:
            self._transient(job, exc)
        except BackendConfigError as exc:
            with self.writes.transaction() as session:  # nothing was sent: back to the queue
                self._move(session, job, SUBMITTED, PLANNED)
            raise DeliveryError(str(exc)) from None
        else:
            self._record(job, statuses)

    def _record(self, job: Job, statuses: Sequence[RecipientStatus]) -> None:
        now = self.runtime.clock()  # once: a batch deferred as a whole stays one batch
        edition, sent = job.batch.edition_id, delivery_ids(job.batch.recipients)
        alike = _alike(statuses, sent)
        with self.writes.transaction() as session:
            if alike is not None:  # the common case: one answer for the whole batch
                outcome = self._outcome(alike, job.attempt, now)
                moves.record_all(session, edition, job.number, outcome, now)
                done = Counter({outcome.status: len(sent)})
            else:
                outcomes = [self._outcome(s, job.attempt, now) for s in statuses]
                moves.record(session, edition, job.number, sent, outcomes, now)
                done = Counter(o.status for o in outcomes)
        seam.checkpoint("recorded")
        self.count(done)
        if self.progress:
            self.progress(done[ACCEPTED] + done[FAILED])

    def _outcome(self, status: RecipientStatus, attempt: int, now: datetime) -> Outcome:
        final = _STATUS[status.status]
        if final != DEFERRED:
            return Outcome(status.delivery_id, final, status.provider_id, status.reason)
        if self.policy.gives_up(attempt):
            reason = f"gave up after {attempt} tries: {status.reason}"
            return Outcome(status.delivery_id, FAILED, reason=reason)
        wait = self.policy.delay(attempt, self.runtime.rng, status.retry_after)
        not_before = now + timedelta(seconds=wait)
        return Outcome(status.delivery_id, DEFERRED, reason=status.reason, not_before=not_before)

    def _refused(self, job: Job, exc: PermanentError) -> None:
        """400/413: drop the blamed recipient (or split in halves) and send the rest again."""
        recipients = list(job.batch.recipients)
        if len(recipients) == 1:
            status = RecipientStatus(recipients[0].delivery_id, "rejected", reason=str(exc))
            self._record(job, [status])
            return
        if exc.bad_index is not None and 0 <= exc.bad_index < len(recipients):
            first = [recipients.pop(exc.bad_index)]
        else:
            half = len(recipients) // 2
            first, recipients = recipients[:half], recipients[half:]
        log.info("batch refused (%s); sending it in two parts", exc)
        with self.writes.transaction() as session:  # refused whole: none of it was sent
            self._move(session, job, SUBMITTED, CLAIMED)
            part = self._split(session, job, first)
        self._submit(part)  # a part of its own: the first recipients, or the blamed one
        rest = dataclasses.replace(job.batch, recipients=recipients)
        self._submit(dataclasses.replace(job, batch=rest))  # the rest stay in the batch

    def _split(self, session: Session, job: Job, recipients: list[Recipient]) -> Job:
        """`recipients` leave the batch for a new one, claimed by the same worker."""
        ids = [r.delivery_id for r in recipients]
        now = self.runtime.clock()
        number = moves.split_off(session, job.batch.edition_id, job.number, ids, now)
        batch = dataclasses.replace(job.batch, batch_id=str(number), recipients=recipients)
        return Job(batch, number, job.attempt, job.worker_id)

    def _transient(self, job: Job, exc: TransientError) -> None:
        """429/5xx/timeout: defer the batch with backoff and hold this worker as long."""
        if exc.maybe_sent and not self.policy.retry_on_timeout:
            log.warning("%s: leaving %d recipients uncertain", exc, len(job.batch.recipients))
            return
        wait = self.policy.delay(job.attempt, self.runtime.rng, exc.retry_after)
        self.throttle.pause(wait)  # first: the worker's other senders wait from now on
        ids = delivery_ids(job.batch.recipients)
        answer = RecipientStatus(ids[0], "deferred", reason=str(exc), retry_after=wait)
        self._record(job, SameAnswer(ids, answer))
        log.warning(
            "%s: pausing %.1f s (try %d of %d)", exc, wait, job.attempt, self.policy.max_attempts
        )


def _alike(statuses: Sequence[RecipientStatus], sent: Sequence[int]) -> RecipientStatus | None:
    """The one answer every recipient of the batch got, if they all got the same one."""
    if not statuses or len(statuses) != len(sent):
        return None
    if isinstance(statuses, SameAnswer) and (statuses.ids is sent or statuses.ids == sent):
        return statuses.answer
    answer = statuses[0][1:]
    if any(s[1:] != answer for s in statuses) or {s[0] for s in statuses} != set(sent):
        return None
    return statuses[0]
