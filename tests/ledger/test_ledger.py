"""The ledger's state moves, on SQLite and on PostgreSQL (docs/design.md §3).

Batches move; a row has a state of its own only when it differs from its batch's. Tests read
rows through tally.effective_rows / tally.counts, the ledger's own definition of a row's state.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select, update

from digest.ledger import moves, registry, tally
from digest.ledger.moves import Outcome
from digest.ledger.reconcile import reconcile
from digest.send import claims
from digest.send.engine import begin
from digest.store.db import transaction
from digest.store.models import (
    ACCEPTED,
    CLAIMED,
    DEFERRED,
    FAILED,
    PLANNED,
    SKIPPED,
    SUBMITTED,
    Delivery,
    Edition,
)
from subscribers.lifecycle import recipients_for
from subscribers.models import UNSUBSCRIBED, Subscriber
from tests.send_helpers import SECTIONS, LedgerDb, add_subscribers


def _plan(db: LedgerDb, eid: int, now: datetime, batch_size: int = 1000) -> int:
    return begin(db.factory, eid, now, batch_size=batch_size).planned


def _claim(db: LedgerDb, eid: int, size: int, now: datetime, worker: int = 1):
    """(claimed rows, skipped count); ([], 0) when nothing was free."""
    with transaction(db.factory) as session:
        batch = claims.claim(session, eid, worker, size, now)
    return (batch.rows, batch.skipped) if batch else ([], 0)


def _statuses(db: LedgerDb, eid: int) -> dict[str, int]:
    """Rows per state, counted the fast way (batch sizes) after checking it against the
    definition (every row's own state or its batch's)."""
    with db.factory() as session:
        fast = tally.counts(session, eid)
        slow = Counter(tally.statuses(session, eid).values())
    assert fast == slow
    return dict(fast)


def test_plan_freezes_the_audience(ledger_db: LedgerDb, edition_id: int, now: datetime) -> None:
    add_subscribers(ledger_db.factory, 30, now)
    assert _plan(ledger_db, edition_id, now) == 30
    add_subscribers(ledger_db.factory, 5, now, start=100)
    assert _statuses(ledger_db, edition_id) == {PLANNED: 30}


def test_plan_takes_recipients_from_recipients_for(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 12, now, sections=[["Asia"], ["Nowhere"], None])
    _plan(ledger_db, edition_id, now)
    with ledger_db.factory() as session:
        expected = {a.email for a in recipients_for(session, SECTIONS, now)}
        planned = set(session.scalars(select(Delivery.email)))
    assert planned == expected and len(planned) == 8


def test_claim_takes_one_variant_lowest_ids_first(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 20, now, sections=[["Asia"], ["Europe"]])
    _plan(ledger_db, edition_id, now)
    rows, skipped = _claim(ledger_db, edition_id, 4, now)
    assert skipped == 0
    assert [r.variant for r in rows] == ["Asia"] * 4
    assert [r.email for r in rows] == [
        "user0@example.com",
        "user2@example.com",
        "user4@example.com",
        "user6@example.com",
    ]
    assert all(r.public_id for r in rows)
    assert _statuses(ledger_db, edition_id) == {CLAIMED: 4, PLANNED: 16}


def test_claim_skips_who_unsubscribed_after_planning(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 5, now)
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "user1@example.com")
            .values(status=UNSUBSCRIBED)
        )
    rows, skipped = _claim(ledger_db, edition_id, 10, now)
    assert skipped == 1
    assert "user1@example.com" not in {r.email for r in rows}
    with ledger_db.factory() as session:
        row = session.scalars(select(Delivery).where(Delivery.status == SKIPPED)).one()
    assert row.email == "user1@example.com" and "unsubscribed" in (row.error or "")


def test_deferred_rows_are_claimed_once_due_and_after_the_planned_ones(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 6, now)
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([1, 2]))
            .values(status=DEFERRED, not_before=now + timedelta(seconds=30), attempts=1)
        )
    assert [r.delivery_id for r in _claim(ledger_db, edition_id, 2, now)[0]] == [3, 4]
    assert [r.delivery_id for r in _claim(ledger_db, edition_id, 2, now)[0]] == [5, 6]
    assert _claim(ledger_db, edition_id, 2, now) == ([], 0)  # not due yet
    later = now + timedelta(seconds=31)
    with transaction(ledger_db.factory) as session:
        batch = claims.claim(session, edition_id, 1, 2, later)
    assert batch is not None and [r.delivery_id for r in batch.rows] == [1, 2]
    assert batch.attempt == 2
    assert _statuses(ledger_db, edition_id) == {CLAIMED: 6}


def _claim_in_threads(
    db: LedgerDb, edition: int, now: datetime, *, workers: int, size: int
) -> list[list[int]]:
    """Workers claiming `size` rows at a time side by side until nothing is left: the delivery
    ids each one took. Barriers, not timing, make it side by side: the workers are released
    together into their first claims, and none makes a second before all have made a first, so
    every worker takes part however busy the machine is (a thread started late cannot find the
    work already done)."""
    taken: list[list[int]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    start = threading.Barrier(workers, timeout=60)
    first_round = threading.Barrier(workers, timeout=60)

    def claim_once(index: int) -> bool:
        rows, _ = _claim(db, edition, size, now, worker=index + 1)
        taken[index] += [r.delivery_id for r in rows]
        return bool(rows)

    def work(index: int) -> None:
        try:
            start.wait()
            more = claim_once(index)
            first_round.wait()
            while more:
                more = claim_once(index)
        except BaseException as exc:  # the test thread re-raises it
            errors.append(exc)
            start.abort()
            first_round.abort()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a claiming thread hung"
    if errors:
        raise errors[0]
    return taken


def test_concurrent_claims_never_share_a_row(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 400, now)
    _plan(ledger_db, edition_id, now, batch_size=7)  # as `digest send` plans for its workers
    taken = _claim_in_threads(ledger_db, edition_id, now, workers=4, size=7)
    everything = [i for part in taken for i in part]
    assert sorted(everything) == list(range(1, 401))
    assert all(taken)  # all four took part, so the claims really did race
    assert _statuses(ledger_db, edition_id) == {CLAIMED: 400}


def test_concurrent_claims_smaller_than_the_planned_batches_never_share_a_row(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 300, now)
    _plan(ledger_db, edition_id, now, batch_size=100)
    taken = _claim_in_threads(ledger_db, edition_id, now, workers=3, size=7)
    assert sorted(i for part in taken for i in part) == list(range(1, 301))
    assert _statuses(ledger_db, edition_id) == {CLAIMED: 300}


def test_record_leaves_rows_a_webhook_already_settled(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 2, now)
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        batch = claims.claim(session, edition_id, 1, 10, now)
        assert batch is not None and batch.attempt == 1
        moves.move(session, edition_id, batch.batch, CLAIMED, SUBMITTED, now)
        moves.move_ids(session, [2], SUBMITTED, FAILED, now, error="bounce: mailbox full")
        outcomes = [Outcome(1, ACCEPTED, "m1"), Outcome(2, ACCEPTED, "m1")]
        moves.record(session, edition_id, batch.batch, [1, 2], outcomes, now)
    rows = _rows(ledger_db)
    assert rows[1].status == ACCEPTED and rows[1].provider_message_id == "m1"
    assert rows[1].attempts == 1
    assert rows[2].status == FAILED and rows[2].error == "bounce: mailbox full"
    assert _statuses(ledger_db, edition_id) == {ACCEPTED: 1, FAILED: 1}


def test_record_per_row_answers_and_leaves_the_unanswered_submitted(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 60, now)
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        batch = claims.claim(session, edition_id, 1, 60, now)
        assert batch is not None
        moves.move(session, edition_id, batch.batch, CLAIMED, SUBMITTED, now)
        answered = [Outcome(i, ACCEPTED, f"<m{i}@x>") for i in range(1, 60)]
        moves.record(session, edition_id, batch.batch, list(range(1, 61)), answered, now)
    rows = _rows(ledger_db)
    assert rows[60].status == SUBMITTED and rows[60].attempts == 0
    found = {i: row.provider_message_id for i, row in rows.items()}
    assert found == {**{i: f"<m{i}@x>" for i in range(1, 60)}, 60: None}
    assert {rows[i].attempts for i in range(1, 60)} == {1}
    assert _statuses(ledger_db, edition_id) == {ACCEPTED: 59, SUBMITTED: 1}


def test_a_resume_releases_the_batches_of_dead_workers_only(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 4, now)
    _plan(ledger_db, edition_id, now, batch_size=2)
    with transaction(ledger_db.factory) as session:
        live = registry.register_worker(session, edition_id, now)
        dead = registry.register_worker(session, edition_id, now)
        assert [r.delivery_id for r in claims.claim(session, edition_id, live, 2, now).rows] == [
            1,
            2,
        ]
        assert [r.delivery_id for r in claims.claim(session, edition_id, dead, 2, now).rows] == [
            3,
            4,
        ]
        registry.stop_worker(session, dead, now)
    with transaction(ledger_db.factory) as session:
        alive = registry.live_workers(session, edition_id, now, 60)
        assert alive == [live]
        assert moves.release_orphans(session, edition_id, alive, now) == 2
    rows = _rows(ledger_db)
    assert [rows[i].status for i in (1, 2, 3, 4)] == [CLAIMED, CLAIMED, PLANNED, PLANNED]
    assert [r.delivery_id for r in _claim(ledger_db, edition_id, 2, now)[0]] == [3, 4]


def test_uncertain_rows_are_the_submitted_rows_of_dead_workers(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 6, now)
    _plan(ledger_db, edition_id, now, batch_size=3)
    with transaction(ledger_db.factory) as session:
        live = registry.register_worker(session, edition_id, now)
        dead = registry.register_worker(session, edition_id, now)
        for worker in (live, dead):
            batch = claims.claim(session, edition_id, worker, 3, now)
            assert batch is not None
            moves.move(session, edition_id, batch.batch, CLAIMED, SUBMITTED, now)
        # One row of the dead worker's batch was settled by an event already.
        moves.move_ids(session, [5], SUBMITTED, ACCEPTED, now)
        registry.stop_worker(session, dead, now)
    with ledger_db.factory() as session:
        alive = registry.live_workers(session, edition_id, now, 60)
        assert tally.uncertain(session, edition_id, alive) == [4, 6]
    assert _statuses(ledger_db, edition_id) == {SUBMITTED: 5, ACCEPTED: 1}


def test_plan_cuts_each_variant_into_batches_of_the_workers_size(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    from digest.store.models import SendBatch

    add_subscribers(ledger_db.factory, 25, now, sections=[["Asia"], ["Europe"], None])
    assert _plan(ledger_db, edition_id, now, batch_size=4) == 25
    with ledger_db.factory() as session:
        batches = session.scalars(select(SendBatch).order_by(SendBatch.id)).all()
        rows = session.execute(select(Delivery.batch_id, Delivery.variant)).all()
    assert sum(b.size for b in batches) == 25 and {b.status for b in batches} == {PLANNED}
    assert max(b.size for b in batches) == 4
    for batch in batches:  # one variant per batch, the variant of its rows
        assert {v for n, v in rows if n == batch.id} == {batch.variant}
        assert len([1 for n, _ in rows if n == batch.id]) == batch.size
    # The first batches cover every variant, in the order of their first subscriber.
    assert [b.variant for b in batches[:3]] == ["Asia", "Europe", "|".join(SECTIONS)]
    assert _statuses(ledger_db, edition_id) == {PLANNED: 25}


def test_a_smaller_claim_hands_the_rest_back_in_the_state_it_was_in(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 10, now)
    _plan(ledger_db, edition_id, now, batch_size=10)
    later = now + timedelta(minutes=5)
    with transaction(ledger_db.factory) as session:
        batch = claims.claim(session, edition_id, 1, 10, now)
        assert batch is not None
        moves.move(session, edition_id, batch.batch, CLAIMED, SUBMITTED, now)
        outcomes = [Outcome(i, DEFERRED, reason="429", not_before=later) for i in range(1, 11)]
        moves.record(session, edition_id, batch.batch, list(range(1, 11)), outcomes, now)
    assert _claim(ledger_db, edition_id, 4, now) == ([], 0)  # not due yet
    with transaction(ledger_db.factory) as session:
        part = claims.claim(session, edition_id, 1, 4, later)
    assert part is not None and [r.delivery_id for r in part.rows] == [1, 2, 3, 4]
    assert part.attempt == 2
    assert _statuses(ledger_db, edition_id) == {CLAIMED: 4, DEFERRED: 6}
    with ledger_db.factory() as session:
        assert tally.next_due(session, edition_id) == later
    assert _claim(ledger_db, edition_id, 4, now) == ([], 0)  # the rest still waits
    assert [r.delivery_id for r in _claim(ledger_db, edition_id, 9, later)[0]] == [
        5,
        6,
        7,
        8,
        9,
        10,
    ]


def test_a_batch_whose_rows_all_left_is_passed_over(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 4, now)
    _plan(ledger_db, edition_id, now, batch_size=2)
    with transaction(ledger_db.factory) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email.in_(["user0@example.com", "user1@example.com"]))
            .values(status=UNSUBSCRIBED)
        )
    rows, skipped = _claim(ledger_db, edition_id, 2, now)
    assert [r.delivery_id for r in rows] == [3, 4] and skipped == 2
    assert _statuses(ledger_db, edition_id) == {SKIPPED: 2, CLAIMED: 2}


def test_workers_on_another_host_time_out(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    add_subscribers(ledger_db.factory, 1, now)  # an empty audience starts no send
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        wid = registry.register_worker(session, edition_id, now)
        session.execute(
            update(registry.SendWorker)
            .where(registry.SendWorker.id == wid)
            .values(host="elsewhere.example", pid=1)
        )
    with ledger_db.factory() as session:
        assert registry.live_workers(session, edition_id, now + timedelta(seconds=30), 60) == [wid]
        assert registry.live_workers(session, edition_id, now + timedelta(seconds=61), 60) == []


def test_reconcile_settles_uncertain_rows_from_events(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
) -> None:
    from digest.store.models import WebhookEvent

    add_subscribers(ledger_db.factory, 3, now)
    _plan(ledger_db, edition_id, now)
    with transaction(ledger_db.factory) as session:
        moves.move_ids(session, [1, 2, 3], PLANNED, SUBMITTED, now)
        for n, (delivery, kind, detail) in enumerate(
            [(1, "processed", None), (2, "processed", None), (2, "bounce", "bounce: 550 no")]
        ):
            session.add(
                WebhookEvent(
                    sg_event_id=f"e{n}",
                    event=kind,
                    edition_id=edition_id,
                    delivery_id=delivery,
                    detail=detail,
                    received_at=now,
                )
            )
    with transaction(ledger_db.factory) as session:
        result = reconcile(session, [1, 2, 3], now)
    assert (result.accepted, result.failed, result.uncertain) == ([1], [2], [3])
    assert _statuses(ledger_db, edition_id) == {ACCEPTED: 1, FAILED: 1, SUBMITTED: 1}


def _rows(db: LedgerDb) -> dict[int, tally.LedgerRow]:
    with db.factory() as session:
        return {row.id: row for row in session.execute(tally.effective_rows())}


def test_begin_twice_is_refused(ledger_db: LedgerDb, edition_id: int, now: datetime) -> None:
    import pytest

    from digest.errors import EditionStateError

    add_subscribers(ledger_db.factory, 1, now)  # an empty audience starts no send
    _plan(ledger_db, edition_id, now)
    with pytest.raises(EditionStateError, match=r"already being sent.*--resume"):
        _plan(ledger_db, edition_id, now)
    with ledger_db.factory() as session:
        assert session.get(Edition, edition_id).status == "sending"  # type: ignore[union-attr]
