"""Many requests in flight per worker ([delivery] concurrency), on SQLite and PostgreSQL: they
really are in flight at once, each on a keep-alive connection of its own; the ledger's
discipline holds for every one of them (claimed and committed before its request, recorded after
its answer); and so do the rate limits, the warm-up cap, the provider's Retry-After and cancel.

The fake SendGrid holds the first requests until as many are in flight as the test expects (a
barrier with a generous timeout): a sender that sent them one at a time fails the test instead of
passing slowly. No timing is asserted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, RecipientStatus, TransientError
from digest.backends.memory import MemoryBackend
from digest.backends.sendgrid import SendGridBackend
from digest.config import Settings
from digest.ledger import tally
from digest.send.engine import send_edition
from digest.send.status import cancel
from digest.send.throttle import Rate, Throttle
from digest.store.db import transaction
from digest.store.models import ACCEPTED, CLAIMED, PLANNED, SENT, SUBMITTED, Edition
from tests.fakes.sendgrid import FakeSendGrid, Fault
from tests.send_helpers import LedgerDb, add_subscribers, with_delivery, with_values
from tests.send_runtime import FakeTime

KEY = "SG.concurrency-test"


def _statuses(factory: sessionmaker[Session], edition: int) -> Counter[str]:
    with factory() as session:
        return Counter(tally.statuses(session, edition).values())


def _sendgrid(settings: Settings, fake: FakeSendGrid, **delivery: object) -> Settings:
    s = with_delivery(settings, backend="sendgrid", sendgrid_host=fake.url, **delivery)
    return with_values(s, sendgrid_api_key=SecretStr(KEY))


def test_requests_are_in_flight_at_once_each_committed_submitted_before_it_went_out(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    factory = ledger_db.factory
    add_subscribers(factory, 40, now)  # 20 batches of 2
    width = 4
    seen: list[Counter[str]] = []
    together = threading.Barrier(width, timeout=60)

    def hold(number: int, phase: str) -> None:
        if phase == "received" and number <= width:
            if together.wait() == 0:  # one of the four looks, while all four are held
                seen.append(_statuses(factory, edition_id))
            together.wait()

    with FakeSendGrid(KEY) as fake:
        fake.on_request = hold
        settings = _sendgrid(ledger_db.settings, fake, batch_size=2, concurrency=width)
        report = send_edition(factory, settings, edition_id=edition_id, now=now)
        copies = fake.copies()
        connections = fake.connections
    # While four requests were out: their eight rows were committed as submitted, one more
    # batch at most was claimed and waiting, nothing was recorded yet.
    assert seen[0][SUBMITTED] == 2 * width
    assert seen[0][CLAIMED] <= 2 and seen[0][ACCEPTED] == 0
    assert set(copies.values()) == {1} and len(copies) == 40
    assert report.counts == {ACCEPTED: 40} and report.finished
    assert connections == width  # one keep-alive connection per sender thread
    with factory() as session:
        assert session.get(Edition, edition_id).status == SENT  # type: ignore[union-attr]


def test_a_cancel_stops_the_claims_and_what_was_in_flight_is_recorded(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    factory = ledger_db.factory
    add_subscribers(factory, 40, now)

    def cancel_then_accept(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            cancel(session, edition_id, now)
        return [RecipientStatus(r.delivery_id, "accepted", "m") for r in batch.recipients]

    settings = with_delivery(ledger_db.settings, batch_size=2, concurrency=4)
    first = MemoryBackend(cancel_then_accept)
    report = send_edition(factory, settings, first, edition_id=edition_id, now=now)
    assert report.stopped == "cancelled" and not report.finished
    sent = len(first.sent_to)
    assert 2 <= sent <= 2 * 5  # what was claimed before the cancel: at most width + 1 batches
    assert _statuses(factory, edition_id) == {ACCEPTED: sent, PLANNED: 40 - sent}
    rest = MemoryBackend()
    report = send_edition(factory, settings, rest, edition_id=edition_id, now=now, resume_send=True)
    assert report.finished
    assert Counter(first.sent_to + rest.sent_to) == {f"user{i}@example.com": 1 for i in range(40)}


def test_the_warm_up_cap_holds_with_batches_in_flight(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    factory = ledger_db.factory
    add_subscribers(factory, 20, now)
    settings = with_delivery(
        ledger_db.settings,
        batch_size=2,
        concurrency=4,
        warmup_start=now.date(),
        warmup_daily=[7, 100],
    )
    backend = MemoryBackend()
    runtime = FakeTime(now).runtime()  # the ramp's first day
    report = send_edition(
        factory, settings, backend, edition_id=edition_id, now=now, runtime=runtime
    )
    # Claimed batches count against the cap, so four in flight never pass it.
    assert len(backend.sent_to) == 7 and report.stopped == "warm-up"
    assert _statuses(factory, edition_id) == {ACCEPTED: 7, PLANNED: 13}


class _SharedTime(FakeTime):
    """FakeTime for several sender threads: each sleep advances the one clock, under a lock."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.lock = threading.Lock()
        self.calls: list[float] = []

    def sleep(self, seconds: float) -> None:
        with self.lock:
            super().sleep(seconds)

    def monotonic(self) -> float:
        with self.lock:
            return self.mono

    def clock(self) -> datetime:
        with self.lock:
            return self.now


def test_a_retry_after_holds_every_sender_until_it_passed(
    ledger_db: LedgerDb, edition_id: int, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = ledger_db.factory
    add_subscribers(factory, 24, now)  # 12 batches of 2
    clock = _SharedTime(now)
    throttled: list[float] = []
    lock = threading.Lock()
    paused = threading.Event()
    pause = Throttle.pause

    def pause_and_tell(self: Throttle, seconds: float) -> None:
        pause(self, seconds)
        paused.set()

    monkeypatch.setattr(Throttle, "pause", pause_and_tell)

    def answer(batch: Batch) -> list[RecipientStatus]:
        with lock:
            clock.calls.append(clock.mono)
            if not throttled:
                throttled.append(clock.mono)
                raise TransientError("SendGrid 429: too many requests", retry_after=30)
        # A batch out beside the refused one comes back only once the worker has paused, so
        # its sender's next batch meets the pause (as a real one, answered later, would).
        paused.wait(30)
        return [RecipientStatus(r.delivery_id, "accepted", "m") for r in batch.recipients]

    settings = with_delivery(ledger_db.settings, batch_size=2, concurrency=4)
    backend = MemoryBackend(answer)
    report = send_edition(
        factory, settings, backend, edition_id=edition_id, now=now, runtime=clock.runtime()
    )
    assert report.finished
    assert Counter(backend.sent_to)[backend.sent_to[0]] == 2  # the refused batch went again
    assert len(set(backend.sent_to)) == 24
    # After the 429 only the batches already past the throttle (at most the other three
    # senders') went out before the provider's 30 seconds were over.
    early = [t for t in clock.calls[1:] if t < throttled[0] + 30]
    assert len(early) <= 3
    assert clock.mono >= throttled[0] + 30


def test_the_rate_limit_is_shared_by_every_sender_thread() -> None:
    clock = [100.0]
    slept: list[float] = []
    throttle = Throttle([Rate(10, 1.0)], clock=lambda: clock[0], sleep=slept.append)
    starts: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        waited = throttle.acquire(5)
        with lock:
            starts.append(clock[0] + waited)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 8 batches of 5 at 10 per second: two per second, never three in one second's window.
    assert sorted(starts) == [100.0, 100.0, 101.0, 101.0, 102.0, 102.0, 103.0, 103.0]


def test_the_fake_answers_within_its_latency_and_jitter() -> None:
    fake = FakeSendGrid(KEY, latency=0.25, jitter=0.05, seed=3)
    delays = [fake.delay() for _ in range(200)]
    assert all(0.2 <= d <= 0.3 for d in delays) and len(set(delays)) > 100
    with pytest.raises(ValueError):
        FakeSendGrid(KEY, latency=0.1, jitter=0.2)


def test_the_backend_keeps_one_connection_per_sender_across_a_whole_send(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    factory = ledger_db.factory
    add_subscribers(factory, 30, now)
    with FakeSendGrid(KEY) as fake:
        # A refused request keeps its connection too (and asks for no wait).
        fake.script(Fault(500, "hiccup", {"X-RateLimit-Reset": str(int(time.time()))}))
        settings = _sendgrid(
            ledger_db.settings, fake, batch_size=3, concurrency=2, retry_base_delay=0.01
        )
        backend = SendGridBackend(KEY, fake.url, timeout=10)
        report = send_edition(factory, settings, backend, edition_id=edition_id, now=now)
        assert report.finished and report.counts == {ACCEPTED: 30}
        assert fake.stats()["requests"] == 11 and fake.connections <= 2
