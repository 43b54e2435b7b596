"""digest.send.dispatch: one claimed batch to the provider with the ledger's discipline
(docs/design.md §3): commit `submitted`, call the provider, record its answer; each kind of
answer lands as the row state it stands for."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import (
    BackendConfigError,
    Batch,
    PermanentError,
    Recipient,
    RecipientStatus,
    TransientError,
)
from digest.backends.memory import MemoryBackend
from digest.errors import DeliveryError
from digest.ledger import moves, registry, tally
from digest.ledger.tally import LedgerRow
from digest.send import claims
from digest.send import runtime as seam
from digest.send.dispatch import Dispatcher, Job
from digest.send.plan import plan
from digest.send.retry import RetryPolicy
from digest.send.throttle import Rate, Throttle
from digest.store.db import transaction
from digest.store.models import (
    ACCEPTED,
    CLAIMED,
    DEFERRED,
    FAILED,
    PLANNED,
    SUBMITTED,
    SendBatch,
)
from tests.send_helpers import SECTIONS, add_subscribers
from tests.send_runtime import FakeTime

Responder = Callable[[Batch], list[RecipientStatus]]


@dataclass
class Rig:
    factory: sessionmaker[Session]
    edition: int
    clock: FakeTime
    backend: MemoryBackend
    dispatcher: Dispatcher
    counts: Counter[str]
    progress: list[int]

    @property
    def calls(self) -> list[list[str]]:
        """The addresses of every batch the provider was handed, in order."""
        return [[r.email for r in b.recipients] for b in self.backend.batches]


def _rig(
    factory: sessionmaker[Session],
    edition: int,
    now: datetime,
    responder: Responder | None = None,
    policy: RetryPolicy | None = None,
    rates: list[Rate] | None = None,
) -> Rig:
    clock = FakeTime(now)
    backend = MemoryBackend(responder)
    counts: Counter[str] = Counter()
    progress: list[int] = []
    throttle = Throttle(rates or [], clock.monotonic, clock.sleep)
    policy = policy or RetryPolicy()
    dispatcher = Dispatcher(
        factory, backend, policy, throttle, clock.runtime(), counts, progress.append
    )
    return Rig(factory, edition, clock, backend, dispatcher, counts, progress)


def _job(
    factory: sessionmaker[Session], edition: int, now: datetime, n: int, attempt: int = 1
) -> Job:
    """`n` subscribers planned in one batch, claimed by worker 1, as the Job a worker makes."""
    add_subscribers(factory, n, now)
    with transaction(factory) as session:
        planned = plan(session, edition, list(SECTIONS), now, 1000)
        registry.start(session, edition, planned.recipients, planned.batches, now)
        claimed = claims.claim(session, edition, 1, 1000, now)
    assert claimed is not None and len(claimed.rows) == n
    recipients = [Recipient(r.delivery_id, r.email) for r in claimed.rows]
    batch = Batch(
        str(claimed.batch), edition, "Subject", "<p>html</p>", "text", "from@x.example", recipients
    )
    return Job(batch, claimed.batch, attempt, worker_id=1)


def _rows(factory: sessionmaker[Session]) -> dict[str, LedgerRow]:
    with factory() as session:
        return {r.email: r for r in session.execute(tally.effective_rows())}


def _states(factory: sessionmaker[Session]) -> dict[str, str]:
    return {email: row.status for email, row in _rows(factory).items()}


def _answer(status: str, **values: Any) -> Responder:
    def respond(batch: Batch) -> list[RecipientStatus]:
        return [RecipientStatus(r.delivery_id, status, **values) for r in batch.recipients]  # type: ignore[arg-type]

    return respond


def _raise(*errors: Exception) -> Responder:
    """Raise `errors` one call after another, then accept."""
    left = list(errors)

    def respond(batch: Batch) -> list[RecipientStatus]:
        if left:
            raise left.pop(0)
        return _answer("accepted", provider_id="ok")(batch)

    return respond


def test_submitted_is_committed_before_the_provider_is_called_and_the_answer_after(
    factory: sessionmaker[Session], edition: int, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[object] = []
    monkeypatch.setattr(seam, "checkpoint", events.append)

    def look_then_accept(batch: Batch) -> list[RecipientStatus]:
        # A connection of its own sees only what was committed.
        with factory() as other:
            state = other.scalar(select(SendBatch.status).where(SendBatch.id == job.number))
            events.append(("call", state, set(tally.statuses(other, edition).values())))
        return _answer("accepted", provider_id="m-1")(batch)

    job = _job(factory, edition, now, 3)
    rig = _rig(factory, edition, now, look_then_accept)
    rig.dispatcher.deliver(job)
    assert events == ["submitted", ("call", SUBMITTED, {SUBMITTED}), "recorded"]
    assert set(_states(factory).values()) == {ACCEPTED}


def test_accepted_rows_are_recorded_with_the_providers_ids_and_counted(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 3)
    rig = _rig(factory, edition, now)  # the memory backend: one message id per recipient
    rig.dispatcher.deliver(job)
    rows = _rows(factory)
    assert {e: (r.status, r.provider_message_id, r.attempts) for e, r in rows.items()} == {
        f"user{i}@example.com": (ACCEPTED, f"mem-{i + 1}", 1) for i in range(3)
    }
    assert rig.counts == {ACCEPTED: 3} and rig.progress == [3]
    assert rig.calls == [["user0@example.com", "user1@example.com", "user2@example.com"]]


def test_one_answer_for_the_whole_batch_is_recorded_on_the_batch(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 4)
    rig = _rig(factory, edition, now, _answer("accepted", provider_id="req-1"))
    rig.dispatcher.deliver(job)
    with factory() as session:
        batch = session.get_one(SendBatch, (edition, job.number))
    assert (batch.status, batch.provider_message_id, batch.attempts) == (ACCEPTED, "req-1", 1)
    assert {r.provider_message_id for r in _rows(factory).values()} == {"req-1"}


def test_a_rejected_recipient_fails_with_the_providers_reason_and_the_rest_are_accepted(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    def reject_user1(batch: Batch) -> list[RecipientStatus]:
        return [
            RecipientStatus(r.delivery_id, "rejected", reason="550 no such user")
            if r.email == "user1@example.com"
            else RecipientStatus(r.delivery_id, "accepted", "m")
            for r in batch.recipients
        ]

    job = _job(factory, edition, now, 3)
    rig = _rig(factory, edition, now, reject_user1)
    rig.dispatcher.deliver(job)
    rows = _rows(factory)
    assert (rows["user1@example.com"].status, rows["user1@example.com"].error) == (
        FAILED,
        "550 no such user",
    )
    assert rows["user0@example.com"].status == rows["user2@example.com"].status == ACCEPTED
    assert rig.counts == {ACCEPTED: 2, FAILED: 1} and rig.progress == [3]


def test_a_deferred_answer_waits_the_providers_retry_after(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now, _answer("deferred", reason="451 later", retry_after=30.0))
    rig.dispatcher.deliver(job)
    rows = _rows(factory).values()
    assert {(r.status, r.error, r.not_before, r.attempts) for r in rows} == {
        (DEFERRED, "451 later", now + timedelta(seconds=30), 1)
    }
    assert rig.counts == {DEFERRED: 2} and rig.progress == [0]  # nobody settled yet


def test_a_deferred_answer_without_a_wait_backs_off_with_jitter(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2, attempt=2)
    policy = RetryPolicy(base_delay=2.0, jitter=0.5)
    rig = _rig(factory, edition, now, _answer("deferred", reason="451"), policy)
    rig.dispatcher.deliver(job)
    (row,) = {(r.status, r.not_before) for r in _rows(factory).values()}
    assert row[0] == DEFERRED  # try 2: 2 * 2^1 = 4 s, half of it random
    assert now + timedelta(seconds=2) <= row[1] <= now + timedelta(seconds=4)


def test_a_deferred_answer_on_the_last_try_fails_with_the_reason(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2, attempt=3)
    policy = RetryPolicy(max_attempts=3)
    rig = _rig(factory, edition, now, _answer("deferred", reason="451 later"), policy)
    rig.dispatcher.deliver(job)
    assert {(r.status, r.error) for r in _rows(factory).values()} == {
        (FAILED, "gave up after 3 tries: 451 later")
    }
    assert rig.counts == {FAILED: 2} and rig.progress == [2]


def test_a_transient_error_defers_the_batch_and_pauses_the_worker_as_long(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 3)
    rig = _rig(factory, edition, now, _raise(TransientError("SendGrid 429", retry_after=17.0)))
    rig.dispatcher.deliver(job)
    rows = _rows(factory).values()
    assert {(r.status, r.error, r.not_before) for r in rows} == {
        (DEFERRED, "SendGrid 429", now + timedelta(seconds=17))
    }
    assert rig.counts == {DEFERRED: 3}
    assert rig.dispatcher.throttle.paused_until == rig.clock.mono + 17.0
    assert rig.dispatcher.throttle.acquire(1) == 17.0  # the next batch waits it out


def test_a_timeout_is_deferred_by_default(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    timeout = TransientError("no answer in 30 s", maybe_sent=True)
    rig = _rig(factory, edition, now, _raise(timeout))
    rig.dispatcher.deliver(job)
    assert set(_states(factory).values()) == {DEFERRED}


def test_a_timeout_stays_uncertain_when_retry_on_timeout_is_off(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    timeout = TransientError("no answer in 30 s", maybe_sent=True)
    rig = _rig(factory, edition, now, _raise(timeout), RetryPolicy(retry_on_timeout=False))
    rig.dispatcher.deliver(job)
    assert set(_states(factory).values()) == {SUBMITTED}  # the provider may have it
    assert rig.counts == {} and rig.progress == [] and rig.dispatcher.throttle.paused_until == 0


def test_an_unexpected_exception_leaves_the_batch_submitted(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now, _raise(RuntimeError("connection reset after DATA")))
    with pytest.raises(RuntimeError, match="connection reset"):
        rig.dispatcher.deliver(job)
    # Nobody knows whether it went out: uncertain, for reconciliation, never sent blindly again.
    assert {(r.status, r.attempts) for r in _rows(factory).values()} == {(SUBMITTED, 0)}
    assert rig.counts == {}


def test_a_recipient_left_out_of_the_answer_stays_submitted(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    def lose_user1(batch: Batch) -> list[RecipientStatus]:
        return [s for s in _answer("accepted", provider_id="m")(batch) if s.delivery_id != 2]

    job = _job(factory, edition, now, 3)
    rig = _rig(factory, edition, now, lose_user1)
    rig.dispatcher.deliver(job)
    rows = _rows(factory)
    assert (rows["user1@example.com"].status, rows["user1@example.com"].attempts) == (SUBMITTED, 0)
    assert rows["user0@example.com"].status == rows["user2@example.com"].status == ACCEPTED
    assert rig.counts == {ACCEPTED: 2}


def test_a_refused_batch_loses_the_blamed_recipient_and_the_rest_goes_again(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    def refuse_user2(batch: Batch) -> list[RecipientStatus]:
        emails = [r.email for r in batch.recipients]
        if "user2@example.com" in emails:
            index = emails.index("user2@example.com")
            raise PermanentError("400: invalid address", bad_index=index)
        return _answer("accepted", provider_id="m")(batch)

    job = _job(factory, edition, now, 4)
    rig = _rig(factory, edition, now, refuse_user2)
    rig.dispatcher.deliver(job)
    everyone = [f"user{i}@example.com" for i in range(4)]
    assert rig.calls == [everyone, ["user2@example.com"], [everyone[0], everyone[1], everyone[3]]]
    rows = _rows(factory)
    assert (rows["user2@example.com"].status, rows["user2@example.com"].error) == (
        FAILED,
        "400: invalid address",
    )
    assert rows["user2@example.com"].batch_id == 1  # a batch of its own, the edition's next
    assert {e: r.status for e, r in rows.items() if e != "user2@example.com"} == {
        e: ACCEPTED for e in everyone if e != "user2@example.com"
    }
    assert rig.counts == {ACCEPTED: 3, FAILED: 1}


def test_a_batch_refused_without_a_culprit_is_sent_in_halves(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    def refuse_user2(batch: Batch) -> list[RecipientStatus]:
        if any(r.email == "user2@example.com" for r in batch.recipients):
            raise PermanentError("413: too large")
        return _answer("accepted", provider_id="m")(batch)

    job = _job(factory, edition, now, 4)
    rig = _rig(factory, edition, now, refuse_user2)
    rig.dispatcher.deliver(job)
    u = [f"user{i}@example.com" for i in range(4)]
    assert rig.calls == [u, u[:2], u[2:], [u[2]], [u[3]]]
    assert _states(factory) == {u[0]: ACCEPTED, u[1]: ACCEPTED, u[2]: FAILED, u[3]: ACCEPTED}


def test_bad_credentials_stop_the_send_with_the_batch_planned_again(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now, _raise(BackendConfigError("401: bad API key")))
    with pytest.raises(DeliveryError, match="401: bad API key"):
        rig.dispatcher.deliver(job)
    with factory() as session:
        batch = session.get_one(SendBatch, (edition, job.number))
    assert (batch.status, batch.worker_id, batch.attempts) == (PLANNED, None, 0)
    assert rig.counts == {}


def test_release_puts_a_claimed_batch_back_to_planned(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now)
    rig.dispatcher.release(job)
    with factory() as session:
        batch = session.get_one(SendBatch, (edition, job.number))
    assert (batch.status, batch.worker_id) == (PLANNED, None)
    assert rig.calls == []


def test_release_leaves_a_batch_that_is_no_longer_claimed(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now)
    rig.dispatcher.deliver(job)
    rig.dispatcher.release(job)
    assert set(_states(factory).values()) == {ACCEPTED}


def test_deliver_waits_for_the_rate_limit_before_the_call(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    slept_at_call: list[list[float]] = []

    def note_then_accept(batch: Batch) -> list[RecipientStatus]:
        slept_at_call.append(list(rig.clock.slept))
        return _answer("accepted", provider_id="m")(batch)

    job = _job(factory, edition, now, 2)
    rig = _rig(factory, edition, now, note_then_accept, rates=[Rate(2, 1.0)])
    rig.dispatcher.throttle.acquire(2)  # two messages a second, and two just went
    rig.dispatcher.deliver(job)
    assert slept_at_call == [[1.0]]


def test_a_batch_no_longer_claimed_is_not_sent(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    with transaction(factory) as session:  # a resume took this worker for dead meanwhile
        assert moves.release_orphans(session, edition, [], now) == 2
    rig = _rig(factory, edition, now)
    with contextlib.suppress(Exception):  # refusing loudly would do as well
        rig.dispatcher.deliver(job)
    assert rig.calls == []  # the rows are planned: whoever claims them next sends them
    assert set(_states(factory).values()) == {PLANNED}


def test_a_batch_claimed_again_by_another_worker_is_not_sent_by_the_first(
    factory: sessionmaker[Session], edition: int, now: datetime
) -> None:
    job = _job(factory, edition, now, 2)
    with transaction(factory) as session:  # released, then claimed by worker 2
        moves.release_orphans(session, edition, [], now)
        again = claims.claim(session, edition, 2, 1000, now)
    assert again is not None and again.batch == job.number
    rig = _rig(factory, edition, now)
    rig.dispatcher.deliver(job)  # worker 1 wakes up with its old claim
    assert rig.calls == []
    assert set(_states(factory).values()) == {CLAIMED}  # worker 2's to send
