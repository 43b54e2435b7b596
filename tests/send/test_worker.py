"""digest.send.worker: one worker's loop over a begun send: claim, compose, dispatch until
nothing is left to claim, or a stop request, a cancel, the warm-up cap; and what it reports.

Sends are planned with digest.send.plan and registered with digest.ledger.registry directly
(what engine.begin does); the clock is a FakeTime whose sleeps advance it."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import BackendConfigError, Batch, RecipientStatus
from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import DeliveryError, EditionStateError
from digest.ledger import registry, tally
from digest.send.compose import Composer
from digest.send.plan import plan
from digest.send.worker import IDLE_NAP, Worker, WorkerReport, batch_size
from digest.store.db import transaction
from digest.store.models import (
    ACCEPTED,
    DEFERRED,
    PLANNED,
    SEND_CANCELLED,
    SKIPPED,
    SendWorker,
)
from subscribers.models import UNSUBSCRIBED, Subscriber
from tests.send_helpers import SECTIONS, add_subscribers, make_edition, with_delivery
from tests.send_runtime import FakeTime

EVERYTHING = "|".join(SECTIONS)
Responder = Callable[[Batch], list[RecipientStatus]]


def _begin(factory: sessionmaker[Session], edition: int, now: datetime, size: int) -> None:
    with transaction(factory) as session:
        planned = plan(session, edition, list(SECTIONS), now, size)
        registry.start(session, edition, planned.recipients, planned.batches, now)


def _run(
    factory: sessionmaker[Session],
    settings: Settings,
    edition: int,
    clock: FakeTime,
    backend: MemoryBackend,
    progress: Callable[[int], None] | None = None,
    **runtime: Any,
) -> WorkerReport:
    with factory() as session:
        view = edition_view(get_edition(session, edition))
    composer = Composer(settings, view, clock.now, settings.secret_keys())
    run_time = dataclasses.replace(clock.runtime(), **runtime)
    return Worker(factory, settings, backend, edition, composer, run_time, progress).run()


def _states(factory: sessionmaker[Session], edition: int) -> Counter[str]:
    with factory() as session:
        return Counter(tally.statuses(session, edition).values())


def _accept(batch: Batch) -> list[RecipientStatus]:
    return [RecipientStatus(r.delivery_id, "accepted", "m") for r in batch.recipients]


class OpenClose(MemoryBackend):
    def __init__(self, responder: Responder | None = None) -> None:
        super().__init__(responder)
        self.log: list[str] = []

    def open(self) -> None:
        self.log.append("open")

    def close(self) -> None:
        self.log.append("close")


@pytest.mark.parametrize("depth", [1, 2], ids=["inline", "overlapped"])
def test_the_worker_runs_until_nothing_is_left_to_claim(
    factory: sessionmaker[Session],
    settings: Settings,
    edition: int,
    now: datetime,
    depth: int,
) -> None:
    add_subscribers(factory, 7, now)
    _begin(factory, edition, now, 3)
    backend = OpenClose()
    s = with_delivery(settings, batch_size=3, concurrency=depth)
    report = _run(factory, s, edition, FakeTime(now), backend)
    assert Counter(backend.sent_to) == {f"user{i}@example.com": 1 for i in range(7)}
    assert [len(b.recipients) for b in backend.batches] == [3, 3, 1]
    assert report == WorkerReport(Counter({ACCEPTED: 7}), {EVERYTHING: 7}, batches=3)
    assert _states(factory, edition) == {ACCEPTED: 7}
    assert backend.log == ["open", "close"]


def test_the_report_counts_recipients_per_variant(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 10, now, sections=[["Asia"], ["Europe", "Asia"], None])
    _begin(factory, edition, now, 2)
    backend = MemoryBackend()
    report = _run(factory, with_delivery(settings, batch_size=2), edition, FakeTime(now), backend)
    assert report.variants == {"Asia": 4, "Europe|Asia": 3, EVERYTHING: 3}
    assert report.batches == 6 == len(backend.batches)


def test_the_worker_registers_itself_and_signs_off(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 2, now)
    _begin(factory, edition, now, 10)
    clock = FakeTime(now)

    def take_a_minute(batch: Batch) -> list[RecipientStatus]:
        clock.now += timedelta(minutes=1)
        return _accept(batch)

    _run(factory, settings, edition, clock, MemoryBackend(take_a_minute))
    with factory() as session:
        worker = session.scalars(select(SendWorker)).one()
    assert (worker.edition_id, worker.host, worker.pid) == (
        edition,
        socket.gethostname(),
        os.getpid(),
    )
    assert (worker.started_at, worker.stopped_at) == (now, now + timedelta(minutes=1))


def test_sqlite_refuses_a_second_live_worker_on_the_send(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 2, now)
    _begin(factory, edition, now, 10)
    with transaction(factory) as session:
        other = registry.register_worker(session, edition, now)  # this process: alive
    backend = MemoryBackend()
    with pytest.raises(EditionStateError, match=f"live worker \\(#{other}\\)"):
        _run(factory, settings, edition, FakeTime(now), backend)
    assert backend.batches == [] and _states(factory, edition) == {PLANNED: 2}


def test_who_left_after_planning_is_counted_as_skipped_and_reported_as_progress(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 5, now)
    _begin(factory, edition, now, 2)
    with transaction(factory) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email.in_(["user0@example.com", "user1@example.com"]))
            .values(status=UNSUBSCRIBED)
        )
    progress: list[int] = []
    backend = MemoryBackend()
    s = with_delivery(settings, batch_size=2)
    report = _run(factory, s, edition, FakeTime(now), backend, progress.append)
    assert report.counts == {ACCEPTED: 3, "skipped": 2} and report.batches == 2
    assert sum(progress) == 5 and 2 in progress
    assert _states(factory, edition) == {ACCEPTED: 3, SKIPPED: 2}
    assert "user0@example.com" not in backend.sent_to


def test_a_stop_request_ends_the_loop_before_the_next_claim(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 9, now)
    _begin(factory, edition, now, 3)
    backend = MemoryBackend()
    s = with_delivery(settings, batch_size=3, concurrency=1)
    report = _run(
        factory, s, edition, FakeTime(now), backend, should_stop=lambda: len(backend.batches) >= 1
    )
    assert report.stopped == "stopped" and report.batches == 1
    assert _states(factory, edition) == {ACCEPTED: 3, PLANNED: 6}


def test_a_cancelled_send_is_not_claimed_from(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 4, now)
    _begin(factory, edition, now, 2)
    with transaction(factory) as session:
        registry.set_state(session, edition, SEND_CANCELLED, now)
    backend = MemoryBackend()
    report = _run(factory, settings, edition, FakeTime(now), backend)
    assert report.stopped == "cancelled" and report.batches == 0 and backend.batches == []
    assert _states(factory, edition) == {PLANNED: 4}


def test_a_cancel_during_the_send_stops_the_worker_after_the_batch_in_hand(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 9, now)
    _begin(factory, edition, now, 3)

    def cancel_then_accept(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            registry.set_state(session, edition, SEND_CANCELLED, now)
        return _accept(batch)

    s = with_delivery(settings, batch_size=3, concurrency=1)
    report = _run(factory, s, edition, FakeTime(now), MemoryBackend(cancel_then_accept))
    assert report.stopped == "cancelled" and report.counts == {ACCEPTED: 3}
    assert _states(factory, edition) == {ACCEPTED: 3, PLANNED: 6}


def test_the_warm_up_cap_shrinks_the_last_claim_and_stops_the_worker(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 10, now)
    _begin(factory, edition, now, 3)
    backend = MemoryBackend()
    s = with_delivery(settings, batch_size=3, warmup_start=now.date(), warmup_daily=[4, 100])
    report = _run(factory, s, edition, FakeTime(now), backend)
    assert report.stopped == "warm-up" and report.counts == {ACCEPTED: 4}
    assert [len(b.recipients) for b in backend.batches] == [3, 1]
    assert _states(factory, edition) == {ACCEPTED: 4, PLANNED: 6}


def test_a_send_that_ends_exactly_at_the_warm_up_cap_was_not_stopped_by_it(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 4, now)
    _begin(factory, edition, now, 2)
    s = with_delivery(settings, batch_size=2, warmup_start=now.date(), warmup_daily=[4])
    report = _run(factory, s, edition, FakeTime(now), MemoryBackend())
    assert _states(factory, edition) == {ACCEPTED: 4}  # everyone got it
    assert report.stopped is None


def test_the_warm_up_cap_counts_what_other_editions_sent_today(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 5, now)
    earlier = make_edition(factory, now)
    _begin(factory, earlier, now, 10)
    _run(factory, settings, earlier, FakeTime(now), MemoryBackend())  # 5 went out today
    _begin(factory, edition, now, 10)
    backend = MemoryBackend()
    s = with_delivery(settings, warmup_start=date(2026, 11, 20), warmup_daily=[7])
    report = _run(factory, s, edition, FakeTime(now), backend)
    assert report.stopped == "warm-up" and len(backend.sent_to) == 2


def test_with_only_deferred_rows_left_the_worker_naps_until_they_are_due(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 2, now)
    _begin(factory, edition, now, 10)
    calls: list[datetime] = []
    clock = FakeTime(now)

    def defer_once(batch: Batch) -> list[RecipientStatus]:
        calls.append(clock.now)
        if len(calls) == 1:
            return [
                RecipientStatus(r.delivery_id, "deferred", reason="451", retry_after=12.0)
                for r in batch.recipients
            ]
        return _accept(batch)

    s = with_delivery(settings, concurrency=1)
    report = _run(factory, s, edition, clock, MemoryBackend(defer_once))
    # Naps of at most IDLE_NAP seconds, so that a cancel is noticed while waiting.
    assert IDLE_NAP == 5.0 and clock.slept == [5.0, 5.0, 2.0]
    assert calls == [now, now + timedelta(seconds=12)]
    assert report.counts == {DEFERRED: 2, ACCEPTED: 2} and report.stopped is None
    assert _states(factory, edition) == {ACCEPTED: 2}


@pytest.mark.parametrize(("step", "beats"), [(11, [0, 11]), (5, [0, 0])])
def test_the_worker_beats_at_most_every_ten_seconds(
    factory: sessionmaker[Session],
    settings: Settings,
    edition: int,
    now: datetime,
    step: int,
    beats: list[int],
) -> None:
    add_subscribers(factory, 2, now)
    _begin(factory, edition, now, 1)
    clock = FakeTime(now)
    seen: list[datetime] = []

    def note_then_accept(batch: Batch) -> list[RecipientStatus]:
        with factory() as session:
            seen.append(session.scalars(select(SendWorker.seen_at)).one())
        clock.now += timedelta(seconds=step)
        return _accept(batch)

    s = with_delivery(settings, batch_size=1, concurrency=1)
    _run(factory, s, edition, clock, MemoryBackend(note_then_accept))
    assert seen == [now + timedelta(seconds=b) for b in beats]


def test_a_failure_that_stops_the_send_still_signs_the_worker_off(
    factory: sessionmaker[Session], settings: Settings, edition: int, now: datetime
) -> None:
    add_subscribers(factory, 2, now)
    _begin(factory, edition, now, 10)

    def refuse(batch: Batch) -> list[RecipientStatus]:
        raise BackendConfigError("401: bad API key")

    with pytest.raises(DeliveryError, match="bad API key"):
        _run(factory, settings, edition, FakeTime(now), MemoryBackend(refuse))
    with factory() as session:
        assert session.scalars(select(SendWorker.stopped_at)).one() == now
        assert registry.live_workers(session, edition, now, 60) == []
    assert _states(factory, edition) == {PLANNED: 2}


class Small(MemoryBackend):
    max_batch = 50


@pytest.mark.parametrize(
    ("backend", "values", "size"),
    [
        (MemoryBackend(), {"batch_size": 500}, 500),
        (Small(), {"batch_size": 500}, 50),  # the backend's own limit
        (MemoryBackend(), {"batch_size": 500, "rate_per_second": 20}, 20),  # one second's worth
        (MemoryBackend(), {"batch_size": 500, "rate_per_hour": 100}, 100),
        (MemoryBackend(), {"batch_size": 500, "rate_per_second": 0.5}, 1),
    ],
    ids=["configured", "backend", "per-second", "per-hour", "slow"],
)
def test_the_batch_size_is_the_smallest_limit(
    settings: Settings, backend: MemoryBackend, values: dict[str, Any], size: int
) -> None:
    assert batch_size(with_delivery(settings, **values), backend) == size
