"""digest.send.claims: taking the next batch of a send, on SQLite and on PostgreSQL (where
workers keep apart with FOR UPDATE SKIP LOCKED).

Sends are planned with digest.send.plan and registered with digest.ledger.registry directly,
as engine.begin does, without the edition's state machine around them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from digest.ledger import moves, registry, tally
from digest.send import changes, claims
from digest.send.claims import ClaimedBatch
from digest.send.plan import plan
from digest.store.db import transaction
from digest.store.models import CLAIMED, DEFERRED, PLANNED, SKIPPED, Delivery, SendBatch
from subscribers.models import UNSUBSCRIBED, Subscriber
from tests.send_helpers import SECTIONS, LedgerDb, add_subscribers

EVERYTHING = "|".join(SECTIONS)


def _begin(
    db: LedgerDb, edition_id: int, now: datetime, batch_size: int, *, log: bool = True
) -> None:
    """Plan and register a send as engine.begin does (`log`: with the change log's mark)."""
    with transaction(db.factory) as session:
        planned = plan(session, edition_id, list(SECTIONS), now, batch_size)
        since = changes.mark(session) if log else None
        registry.start(session, edition_id, planned.recipients, planned.batches, now, since)


def _claim(
    db: LedgerDb, edition_id: int, size: int, now: datetime, worker: int = 1
) -> ClaimedBatch | None:
    """A claim as a worker makes it: with the send's change log where it has one (SQLite)."""
    with transaction(db.factory) as session:
        changed = changes.Changed.of_send(session, edition_id)
        return claims.claim(session, edition_id, worker, size, now, changed)


def _ids(batch: ClaimedBatch | None) -> list[int]:
    assert batch is not None
    return [r.delivery_id for r in batch.rows]


def _batches(db: LedgerDb) -> dict[int, tuple[str, int, int | None]]:
    """Every batch: (status, size, worker)."""
    with db.factory() as session:
        rows = session.scalars(select(SendBatch).order_by(SendBatch.id))
        return {b.id: (b.status, b.size, b.worker_id) for b in rows}


def _change(db: LedgerDb, email: str, **values: Any) -> None:
    with transaction(db.factory) as session:
        session.execute(update(Subscriber).where(Subscriber.email == email).values(**values))


def _statuses(db: LedgerDb, edition_id: int) -> dict[int, str]:
    with db.factory() as session:
        return tally.statuses(session, edition_id)


def test_a_claim_takes_one_planned_batch_for_its_worker(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 5, now)
    _begin(ledger_db, edition_id, now, batch_size=3)
    claimed = _claim(ledger_db, edition_id, 3, now, worker=7)
    assert claimed is not None
    assert (claimed.batch, claimed.skipped, claimed.attempt) == (0, 0, 1)
    with ledger_db.factory() as session:
        public = {e: p for e, p in session.execute(select(Subscriber.email, Subscriber.public_id))}
    assert [(r.delivery_id, r.email, r.variant, r.public_id) for r in claimed.rows] == [
        (i, f"user{i - 1}@example.com", EVERYTHING, public[f"user{i - 1}@example.com"])
        for i in (1, 2, 3)
    ]
    assert _batches(ledger_db) == {0: (CLAIMED, 3, 7), 1: (PLANNED, 2, None)}


def test_claims_take_the_batches_in_order_one_variant_each(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 8, now, sections=[["Asia"], ["Europe"]])
    _begin(ledger_db, edition_id, now, batch_size=2)
    taken = []
    while (claimed := _claim(ledger_db, edition_id, 2, now)) is not None:
        emails = [r.email.split("@")[0] for r in claimed.rows]
        taken.append((claimed.batch, {r.variant for r in claimed.rows}, emails))
    assert taken == [
        (0, {"Asia"}, ["user0", "user2"]),
        (1, {"Europe"}, ["user1", "user3"]),
        (2, {"Asia"}, ["user4", "user6"]),
        (3, {"Europe"}, ["user5", "user7"]),
    ]


def test_nothing_to_claim_is_none(ledger_db: LedgerDb, edition_id: int, now: datetime) -> None:
    assert _claim(ledger_db, edition_id, 10, now) is None  # never planned
    add_subscribers(ledger_db.factory, 2, now)
    _begin(ledger_db, edition_id, now, batch_size=10)
    assert _ids(_claim(ledger_db, edition_id, 10, now)) == [1, 2]
    assert _claim(ledger_db, edition_id, 10, now) is None  # all claimed


def test_two_workers_never_get_the_same_rows(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 23, now, sections=[["Asia"], None])
    _begin(ledger_db, edition_id, now, batch_size=5)
    taken: dict[int, list[int]] = {1: [], 2: []}
    worker = 1
    while (claimed := _claim(ledger_db, edition_id, 5, now, worker=worker)) is not None:
        taken[worker] += _ids(claimed)
        worker = 3 - worker
    assert not set(taken[1]) & set(taken[2])
    assert sorted(taken[1] + taken[2]) == list(range(1, 24))
    with ledger_db.factory() as session:
        assert claims.claimed_by(session, edition_id) == {1: 12, 2: 11}


@pytest.mark.postgres
@pytest.mark.parametrize("ledger_db", ["postgres"], indirect=True)
def test_postgres_a_claim_skips_the_batch_an_open_claim_holds(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 6, now)
    _begin(ledger_db, edition_id, now, batch_size=3)
    with ledger_db.factory() as first, first.begin():
        held = claims.claim(first, edition_id, 1, 3, now)  # not committed: its row is locked
        with ledger_db.factory() as second, second.begin():
            # A claim that waited on the lock instead of skipping it fails here, not hangs.
            second.execute(text("SET LOCAL lock_timeout = '5s'"))
            other = claims.claim(second, edition_id, 2, 3, now)
    assert (_ids(held), _ids(other)) == ([1, 2, 3], [4, 5, 6])
    assert _batches(ledger_db) == {0: (CLAIMED, 3, 1), 1: (CLAIMED, 3, 2)}


def test_who_unsubscribed_after_planning_is_skipped_with_the_reason(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 4, now)
    _begin(ledger_db, edition_id, now, batch_size=10)
    _change(ledger_db, "user2@example.com", status=UNSUBSCRIBED)
    claimed = _claim(ledger_db, edition_id, 10, now)
    assert claimed is not None and claimed.skipped == 1 and _ids(claimed) == [1, 2, 4]
    with ledger_db.factory() as session:
        row = session.get_one(Delivery, 3)
    assert (row.status, row.error, row.updated_at) == (SKIPPED, moves.SKIP_REASON, now)
    assert _statuses(ledger_db, edition_id) == {1: CLAIMED, 2: CLAIMED, 3: SKIPPED, 4: CLAIMED}


@pytest.mark.parametrize(
    ("change", "skipped"),
    [
        ({"paused_until": datetime(2026, 12, 1, tzinfo=UTC)}, True),  # paused since planning
        ({"paused_until": datetime(2026, 11, 1, tzinfo=UTC)}, False),  # a pause that is over
        ({"sections": ["Sports"]}, True),  # none of the variant's sections any more
        ({"sections": []}, True),
        ({"sections": ["Asia"]}, False),  # one of them still: the frozen variant goes
    ],
    ids=["paused", "pause-over", "left-the-sections", "no-sections", "dropped-some"],
)
def test_the_subscribers_state_at_the_claim_decides_a_skip(
    ledger_db: LedgerDb, edition_id: int, now: datetime, change: dict[str, Any], skipped: bool
) -> None:
    add_subscribers(ledger_db.factory, 3, now, sections=[["Asia", "Europe"]])
    _begin(ledger_db, edition_id, now, batch_size=10)
    _change(ledger_db, "user1@example.com", **change)
    claimed = _claim(ledger_db, edition_id, 10, now)
    assert claimed is not None
    assert claimed.skipped == int(skipped)
    assert _ids(claimed) == ([1, 3] if skipped else [1, 2, 3])
    assert {r.variant for r in claimed.rows} == {"Europe|Asia"}
    assert _statuses(ledger_db, edition_id)[2] == (SKIPPED if skipped else CLAIMED)


def test_a_batch_nobody_is_left_in_is_skipped_and_the_next_one_claimed(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 5, now)
    _begin(ledger_db, edition_id, now, batch_size=2)
    for email in ("user0@example.com", "user1@example.com", "user2@example.com"):
        _change(ledger_db, email, status=UNSUBSCRIBED)
    claimed = _claim(ledger_db, edition_id, 2, now)
    assert claimed is not None and claimed.batch == 1
    assert claimed.skipped == 3 and _ids(claimed) == [4]
    assert _batches(ledger_db) == {0: (SKIPPED, 2, 1), 1: (CLAIMED, 2, 1), 2: (PLANNED, 1, None)}


def test_when_everyone_left_the_claim_says_only_how_many_were_skipped(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 3, now)
    _begin(ledger_db, edition_id, now, batch_size=2)
    with transaction(ledger_db.factory) as session:
        session.execute(update(Subscriber).values(status=UNSUBSCRIBED))
    assert _claim(ledger_db, edition_id, 2, now) == ClaimedBatch(-1, [], 3, 0)
    assert set(_statuses(ledger_db, edition_id).values()) == {SKIPPED}
    assert _claim(ledger_db, edition_id, 2, now) is None


def test_a_smaller_claim_splits_the_rest_off_into_a_planned_batch(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 10, now, sections=[["Asia"]])
    _begin(ledger_db, edition_id, now, batch_size=10)
    later = now + timedelta(minutes=1)
    part = _claim(ledger_db, edition_id, 4, later, worker=3)
    assert part is not None and part.batch == 0 and _ids(part) == [1, 2, 3, 4]
    # The rest: a new batch with the edition's next number, of the same variant, planned.
    assert _batches(ledger_db) == {0: (CLAIMED, 4, 3), 1: (PLANNED, 6, None)}
    with ledger_db.factory() as session:
        rest = session.get_one(SendBatch, (edition_id, 1))
        send = registry.send_state(session, edition_id)
        moved = session.scalars(select(Delivery.id).where(Delivery.batch_id == 1)).all()
    assert (rest.variant, rest.attempts, rest.created_at) == ("Asia", 0, later)
    assert send is not None and send.batches == 2
    assert sorted(moved) == [5, 6, 7, 8, 9, 10]
    assert _ids(_claim(ledger_db, edition_id, 10, later)) == [5, 6, 7, 8, 9, 10]


def test_a_smaller_claim_of_a_deferred_batch_leaves_the_rest_deferred_as_it_was(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 6, now)
    _begin(ledger_db, edition_id, now, batch_size=6)
    due = now - timedelta(seconds=1)
    with transaction(ledger_db.factory) as session:
        session.execute(
            update(SendBatch).values(status=DEFERRED, not_before=due, attempts=2, error="429")
        )
    part = _claim(ledger_db, edition_id, 2, now)
    assert part is not None and part.attempt == 3 and _ids(part) == [1, 2]
    with ledger_db.factory() as session:
        rest = session.get_one(SendBatch, (edition_id, 1))
    assert (rest.status, rest.size, rest.not_before, rest.attempts) == (DEFERRED, 4, due, 2)


def test_planned_batches_go_before_due_deferred_ones(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 4, now)
    _begin(ledger_db, edition_id, now, batch_size=2)
    with transaction(ledger_db.factory) as session:
        session.execute(
            update(SendBatch)
            .where(SendBatch.id == 0)
            .values(status=DEFERRED, not_before=now - timedelta(seconds=1), attempts=1)
        )
    first = _claim(ledger_db, edition_id, 2, now)
    assert first is not None and (first.batch, first.attempt) == (1, 1)
    second = _claim(ledger_db, edition_id, 2, now)
    assert second is not None and (second.batch, second.attempt) == (0, 2)


def test_a_deferred_batch_is_claimed_from_its_not_before_on(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 2, now)
    _begin(ledger_db, edition_id, now, batch_size=2)
    due = now + timedelta(seconds=30)
    with transaction(ledger_db.factory) as session:
        session.execute(update(SendBatch).values(status=DEFERRED, not_before=due, attempts=1))
    assert _claim(ledger_db, edition_id, 2, due - timedelta(microseconds=1)) is None
    claimed = _claim(ledger_db, edition_id, 2, due)
    assert claimed is not None and _ids(claimed) == [1, 2] and claimed.attempt == 2


def test_rows_planned_on_their_own_are_gathered_into_a_new_batch_of_one_variant(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 6, now, sections=[["Asia"], ["Europe"]])
    _begin(ledger_db, edition_id, now, batch_size=10)
    with transaction(ledger_db.factory) as session:  # a resume sends these again
        session.execute(update(SendBatch).values(status="accepted"))
        session.execute(update(Delivery).where(Delivery.id > 1).values(status=PLANNED))
    claimed = _claim(ledger_db, edition_id, 10, now, worker=4)
    # Rows are numbered in subscriber order: Asia 1, 3, 5; Europe 2, 4, 6. The variant of the
    # lowest such row (Europe), its rows only, in the edition's next number.
    assert claimed is not None and claimed.batch == 2
    assert _ids(claimed) == [2, 4, 6] and {r.variant for r in claimed.rows} == {"Europe"}
    with ledger_db.factory() as session:
        own = {i: status for i, status in session.execute(select(Delivery.id, Delivery.status))}
    assert own == {1: None, 2: None, 3: PLANNED, 4: None, 5: PLANNED, 6: None}
    assert _batches(ledger_db)[2] == (CLAIMED, 3, 4)
    asia = _claim(ledger_db, edition_id, 1, now)
    assert asia is not None and _ids(asia) == [3]  # at most `size` rows, lowest ids first
    assert {r.variant for r in asia.rows} == {"Asia"}
    assert _statuses(ledger_db, edition_id) == {
        1: "accepted", 2: CLAIMED, 3: CLAIMED, 4: CLAIMED, 5: PLANNED, 6: CLAIMED
    }  # fmt: skip


def test_rows_deferred_on_their_own_are_gathered_once_due(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 3, now)
    _begin(ledger_db, edition_id, now, batch_size=10)
    due = now + timedelta(seconds=10)
    with transaction(ledger_db.factory) as session:
        session.execute(update(SendBatch).values(status="accepted", attempts=1))
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([1, 3]))
            .values(status=DEFERRED, not_before=due, attempts=1)
        )
    assert _claim(ledger_db, edition_id, 10, now) is None
    claimed = _claim(ledger_db, edition_id, 10, due)
    assert claimed is not None and _ids(claimed) == [1, 3] and claimed.attempt == 2
    assert _statuses(ledger_db, edition_id) == {1: CLAIMED, 2: "accepted", 3: CLAIMED}


def test_claimed_by_counts_rows_per_worker(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 7, now)
    _begin(ledger_db, edition_id, now, batch_size=3)
    for worker in (5, 6, 5):
        _claim(ledger_db, edition_id, 3, now, worker=worker)
    with ledger_db.factory() as session:
        assert claims.claimed_by(session, edition_id) == {5: 4, 6: 3}
