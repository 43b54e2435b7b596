"""digest.send.plan: freezing an edition's audience into ledger rows and planned batches.

On SQLite and on PostgreSQL (the planner is one INSERT ... SELECT the database runs, and
PostgreSQL's half refreshes the planner's statistics).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.send.plan import Plan, plan
from digest.store.db import transaction
from digest.store.models import PLANNED, Delivery, SendBatch
from subscribers.models import (
    ACTIVE,
    BOUNCED,
    COMPLAINED,
    ERASED,
    PENDING,
    UNSUBSCRIBED,
    Subscriber,
)
from tests.send_helpers import SECTIONS, LedgerDb, add_subscribers, make_edition

EVERYTHING = "|".join(SECTIONS)


def _plan(db: LedgerDb, edition_id: int, now: datetime, batch_size: int = 1000) -> Plan:
    with transaction(db.factory) as session:
        return plan(session, edition_id, list(SECTIONS), now, batch_size)


def _subscriber(factory: sessionmaker[Session], email: str, now: datetime, **values: Any) -> None:
    """One subscriber, active and confirmed unless `values` say otherwise."""
    row = {
        "public_id": uuid.uuid4().hex,
        "email": email,
        "status": ACTIVE,
        "sections": None,
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now,
        **values,
    }
    with transaction(factory) as session:
        session.execute(insert(Subscriber), [row])


def _deliveries(db: LedgerDb) -> list[Delivery]:
    with db.factory() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def _batches(db: LedgerDb) -> list[SendBatch]:
    with db.factory() as session:
        return list(session.scalars(select(SendBatch).order_by(SendBatch.id)))


def test_every_eligible_subscriber_gets_exactly_one_row(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 12, now)
    assert _plan(ledger_db, edition_id, now) == Plan(recipients=12, batches=1)
    with ledger_db.factory() as session:
        subscribers = {s.id: s for s in session.scalars(select(Subscriber))}
    rows = _deliveries(ledger_db)
    assert Counter(r.subscriber_id for r in rows) == {sid: 1 for sid in subscribers}
    for row in rows:  # the address and the opaque id are frozen with the audience
        subscriber = subscribers[row.subscriber_id]  # type: ignore[index]
        assert (row.email, row.public_id) == (subscriber.email, subscriber.public_id)
        assert row.edition_id == edition_id and row.variant == EVERYTHING
        assert row.status is None and row.attempts == 0 and row.batch_id == 0
        assert row.created_at == now == row.updated_at


def test_nobody_who_may_not_be_mailed_is_planned(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    f = ledger_db.factory
    _subscriber(f, "active@example.com", now)
    _subscriber(f, "pause-over@example.com", now, paused_until=now)  # ends at `now`: mailed
    _subscriber(f, "some-sections@example.com", now, sections=["Asia", "Sports"])
    _subscriber(f, "pending@example.com", now, status=PENDING, confirmed_at=None)
    _subscriber(f, "unconfirmed@example.com", now, confirmed_at=None)
    _subscriber(f, "unsubscribed@example.com", now, status=UNSUBSCRIBED)
    _subscriber(f, "erased@example.com", now, status=ERASED)
    _subscriber(f, "bounced@example.com", now, status=BOUNCED)
    _subscriber(f, "complained@example.com", now, status=COMPLAINED)
    _subscriber(f, "paused@example.com", now, paused_until=now + timedelta(seconds=1))
    _subscriber(f, "other-sections@example.com", now, sections=["Sports"])
    _subscriber(f, "no-sections@example.com", now, sections=[])
    assert _plan(ledger_db, edition_id, now).recipients == 3
    rows = {r.email: r.variant for r in _deliveries(ledger_db)}
    assert rows == {
        "active@example.com": EVERYTHING,
        "pause-over@example.com": EVERYTHING,
        "some-sections@example.com": "Asia",
    }


def test_rows_are_cut_into_batches_of_the_given_size_in_subscriber_order(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 10, now)
    assert _plan(ledger_db, edition_id, now, batch_size=4) == Plan(recipients=10, batches=3)
    rows = _deliveries(ledger_db)
    assert [r.batch_id for r in rows] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert [r.email for r in rows] == [f"user{i}@example.com" for i in range(10)]
    batches = _batches(ledger_db)
    assert [(b.id, b.size, b.status, b.variant) for b in batches] == [
        (0, 4, PLANNED, EVERYTHING),
        (1, 4, PLANNED, EVERYTHING),
        (2, 2, PLANNED, EVERYTHING),
    ]
    for batch in batches:  # a planned batch belongs to nobody yet and has not been tried
        assert (batch.worker_id, batch.attempts, batch.not_before) == (None, 0, None)
        assert batch.edition_id == edition_id and batch.created_at == now


def test_one_variant_from_several_stored_texts_skips_who_gets_nothing_of_the_edition(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    """Every section, written three ways (NULL, the list, the list reordered), is one variant
    (the plan's one-variant path); a subscriber of another section only gets nothing."""
    everything, reordered = list(SECTIONS), list(reversed(SECTIONS))
    sections = [None, ["Sports"], everything, reordered, ["Sports"]]
    add_subscribers(ledger_db.factory, 11, now, sections=sections)
    assert _plan(ledger_db, edition_id, now, batch_size=3) == Plan(recipients=7, batches=3)
    rows = _deliveries(ledger_db)
    kept = [i for i in range(11) if sections[i % 5] != ["Sports"]]
    assert [r.email for r in rows] == [f"user{i}@example.com" for i in kept]
    assert [r.batch_id for r in rows] == [0, 0, 0, 1, 1, 1, 2]
    assert {r.variant for r in rows} == {EVERYTHING}
    assert [(b.id, b.size) for b in _batches(ledger_db)] == [(0, 3), (1, 3), (2, 1)]


@pytest.mark.parametrize(
    "sections",
    [
        [None],
        [None, None, ["Sports"]],
        [["Asia"], ["Asia"], ["Asia"], ["Europe"], None],
        [["Sports"]],
    ],
    ids=["one-text", "one-variant-and-nobody", "three-variants", "nobody"],
)
def test_the_survey_reads_the_same_audience_whatever_its_chunks(
    ledger_db: LedgerDb,
    edition_id: int,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    sections: list[list[str] | None],
) -> None:
    """The survey reads the audience a chunk at a time: chunks of 3 rows find the same
    variants, counts and batch starts as one chunk of everything."""
    from digest.send import plan as planning

    add_subscribers(ledger_db.factory, 40, now, sections=sections)
    with ledger_db.factory() as session:
        whole = planning.survey(session, list(SECTIONS), now, 4)
        monkeypatch.setattr(planning, "_CHUNK", 3)
        chunked = planning.survey(session, list(SECTIONS), now, 4)
    assert (chunked.counts, chunked.texts, chunked.starts) == (
        whole.counts,
        whole.texts,
        whole.starts,
    )
    assert sum(whole.counts.values()) == sum(
        1 for i in range(40) if sections[i % len(sections)] != ["Sports"]
    )


def test_each_batch_holds_one_variant_and_the_numbers_interleave_the_variants(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    # Variants in the order of their first subscriber: Asia (user0), Europe (user3), all (user4).
    sections = [["Asia"], ["Asia"], ["Asia"], ["Europe"], None]
    add_subscribers(ledger_db.factory, 15, now, sections=sections)
    planned = _plan(ledger_db, edition_id, now, batch_size=2)
    assert planned == Plan(recipients=15, batches=13)
    rows = _deliveries(ledger_db)
    batches = {b.id: b for b in _batches(ledger_db)}
    # Batch k of variant v is k * 3 + v: Asia's 9 rows 0, 3, 6, 9, 12; Europe's 3 rows 1, 4;
    # everyone's 3 rows 2, 5. The numbers after Europe's and everyone's last batch stay unused.
    assert {n: b.variant for n, b in batches.items()} == {
        0: "Asia", 3: "Asia", 6: "Asia", 9: "Asia", 12: "Asia",
        1: "Europe", 4: "Europe",
        2: EVERYTHING, 5: EVERYTHING,
    }  # fmt: skip
    for row in rows:
        assert batches[row.batch_id].variant == row.variant  # type: ignore[index]
    assert Counter(r.batch_id for r in rows) == {n: b.size for n, b in batches.items()}
    assert [r.email for r in rows if r.batch_id == 0] == ["user0@example.com", "user1@example.com"]
    assert [r.email for r in rows if r.batch_id == 12] == ["user12@example.com"]


def test_a_variant_lists_its_sections_in_the_editions_order(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    f = ledger_db.factory
    _subscriber(f, "a@example.com", now, sections=["Diplomacy", "Europe", "Sports"])
    _subscriber(f, "b@example.com", now, sections=["Europe", "Diplomacy"])
    assert _plan(ledger_db, edition_id, now, batch_size=10) == Plan(recipients=2, batches=1)
    assert {r.variant for r in _deliveries(ledger_db)} == {"Europe|Diplomacy"}
    assert [(b.variant, b.size) for b in _batches(ledger_db)] == [("Europe|Diplomacy", 2)]


def test_an_empty_audience_plans_nothing(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    _subscriber(ledger_db.factory, "unsubscribed@example.com", now, status=UNSUBSCRIBED)
    assert _plan(ledger_db, edition_id, now) == Plan(recipients=0, batches=0)
    assert _deliveries(ledger_db) == [] and _batches(ledger_db) == []


def test_editions_are_planned_and_numbered_apart(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    other = make_edition(ledger_db.factory, now, sections=["Asia"])
    add_subscribers(ledger_db.factory, 3, now, sections=[["Asia"], ["Europe"]])
    with transaction(ledger_db.factory) as session:
        assert plan(session, other, ["Asia"], now, 10) == Plan(recipients=2, batches=1)
    assert _plan(ledger_db, edition_id, now, batch_size=10) == Plan(recipients=3, batches=2)
    rows = Counter((r.edition_id, r.batch_id, r.variant) for r in _deliveries(ledger_db))
    assert rows == {(other, 0, "Asia"): 2, (edition_id, 0, "Asia"): 2, (edition_id, 1, "Europe"): 1}


def test_a_second_plan_of_the_same_edition_is_refused_and_the_first_stands(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 5, now)
    _plan(ledger_db, edition_id, now, batch_size=2)
    add_subscribers(ledger_db.factory, 2, now, start=100)
    with pytest.raises(IntegrityError):  # one row per (edition, subscriber), ever
        _plan(ledger_db, edition_id, now + timedelta(hours=1), batch_size=2)
    rows = _deliveries(ledger_db)
    assert len(rows) == 5 and {r.created_at for r in rows} == {now}
    assert [b.size for b in _batches(ledger_db)] == [2, 2, 1]


@pytest.mark.postgres
@pytest.mark.parametrize("ledger_db", ["postgres"], indirect=True)
def test_postgres_statistics_know_the_new_rows_at_once(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 30, now)
    with transaction(ledger_db.factory) as session:
        plan(session, edition_id, list(SECTIONS), now, 10)
        reltuples = session.execute(
            text(
                "SELECT relname, reltuples FROM pg_class"
                " WHERE oid IN ('deliveries'::regclass, 'send_batches'::regclass)"
            )
        ).all()
    assert dict(reltuples) == {"deliveries": 30, "send_batches": 3}
