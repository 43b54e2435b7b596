"""The delivery ledger's SQL: every move of a Delivery row between states (design.md §3).

planned → claimed → submitted → accepted | failed | deferred; skipped for whoever unsubscribed
before their batch was claimed. A claim tags its rows with a batch id, and every later move of
the batch is one UPDATE on that id (no 1000-item IN lists). Each function runs inside the
caller's short transaction; those that may follow a read begin with a write (see
registry.write_first), and PostgreSQL workers share a send through `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Table,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from digest.models import (
    ACCEPTED,
    CLAIMED,
    DEFERRED,
    PLANNED,
    SKIPPED,
    SUBMITTED,
    Delivery,
)
from subscribers.models import ACTIVE, Subscriber

# Rows that keep a send from being finished.
UNFINISHED = (PLANNED, CLAIMED, DEFERRED, SUBMITTED)
SKIP_REASON = "unsubscribed before their batch was sent"
TABLE = D = cast(Table, Delivery.__table__)
S = cast(Table, Subscriber.__table__)
# The condition of the partial index ix_deliveries_queue, as literal SQL: SQLite and PostgreSQL
# use a partial index only when the query states its condition (with the same constants).
QUEUED = text("deliveries.status IN ('planned', 'deferred')")


def variant_key(sections: Sequence[str]) -> str:
    return "|".join(sections)


class Claimed(NamedTuple):
    """A claimed row with what the batch needs: the address and the opaque id for links."""

    delivery_id: int
    email: str
    variant: str
    public_id: str


@dataclass(frozen=True)
class ClaimedBatch:
    batch_id: str
    rows: list[Claimed]
    skipped: int
    # This try's number: 1 for rows never tried, more for deferred rows tried again.
    attempt: int


class Outcome(NamedTuple):
    """What to write for one delivery after the provider answered."""

    delivery_id: int
    status: str  # ACCEPTED, FAILED or DEFERRED
    provider_id: str | None = None
    reason: str | None = None
    not_before: datetime | None = None


# --- claiming and recording -------------------------------------------------------------------


def claim(
    session: Session, edition_id: int, worker_id: int, size: int, now: datetime
) -> ClaimedBatch | None:
    """Take the next batch of one variant: planned rows first, then deferred ones that are due
    (a retry waits for its `not_before` anyway; asking for them only when the planned rows run
    out saves a statement per batch).

    One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED): two workers never get the
    same row, and the guard on status keeps a second SQLite process honest too. Rows whose
    subscriber is no longer active are marked skipped here: an unsubscribe that arrives during
    a send is honoured for every batch not yet claimed.
    """
    batch_id = new_batch_id()
    for status in (PLANNED, DEFERRED):
        rows = _claim_rows(session, edition_id, status, worker_id, batch_id, size, now)
        if rows:
            break
    else:
        return None
    gone = set(
        session.scalars(
            select(D.c.id)
            .select_from(D.outerjoin(S, S.c.id == D.c.subscriber_id))
            .where(D.c.batch_id == batch_id, or_(S.c.status.is_(None), S.c.status != ACTIVE))
        )
    )
    if gone:
        _set_many(session, sorted(gone), CLAIMED, SKIPPED, now, error=SKIP_REASON)
    claimed = sorted(Claimed(r[0], r[1], r[2], r[3]) for r in rows if r[0] not in gone)
    attempt = max(r[4] for r in rows) + 1
    return ClaimedBatch(batch_id, claimed, len(gone), attempt)


def _claim_rows(
    session: Session,
    edition_id: int,
    status: str,
    worker_id: int,
    batch_id: str,
    size: int,
    now: datetime,
) -> Sequence[Any]:
    """Tag up to `size` rows with `batch_id`; their (id, email, variant, public_id, attempts).

    Core statements on the table (not the ORM): this runs a thousand times per million.
    """
    due: list[Any] = [D.c.edition_id == edition_id, D.c.status == status]
    pick: list[Any] = list(due)
    if status == DEFERRED:  # few rows: found through (edition_id, status)
        pick.append(or_(D.c.not_before.is_(None), D.c.not_before <= now))
        due = pick
    else:
        # Planned rows through the queue index (edition_id, variant, id): its own condition
        # verbatim, and no equality on status, which would tempt the planner into scanning
        # (edition_id, status) past every other variant. Planned rows have no not_before.
        pick = [D.c.edition_id == edition_id, QUEUED, D.c.not_before.is_(None)]
    first_variant = select(D.c.variant).where(*due).order_by(D.c.id).limit(1)
    # MATERIALIZED: PostgreSQL may otherwise re-run a SKIP LOCKED subquery inside the UPDATE
    # and take more than `size` rows (each re-run skips the rows the last one locked).
    picked = (
        select(D.c.id)
        .where(*pick, D.c.variant == first_variant.scalar_subquery())
        .order_by(D.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return session.execute(
        update(D)
        .where(D.c.id.in_(select(picked.c.id)), D.c.status == status)
        .values(status=CLAIMED, worker_id=worker_id, batch_id=batch_id, updated_at=now)
        .returning(D.c.id, D.c.email, D.c.variant, D.c.public_id, D.c.attempts)
    ).all()


def move(
    session: Session, batch_id: str, frm: str, to: str, now: datetime, **values: object
) -> int:
    """A batch's rows in state `frm` → `to` (rows another actor already moved stay)."""
    if to == PLANNED:
        values["not_before"] = None  # planned rows are found by `not_before IS NULL`
    result = session.execute(
        update(D)
        .where(D.c.batch_id == batch_id, D.c.status == frm)
        .values(status=to, updated_at=now, **values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def move_ids(
    session: Session, ids: Sequence[int], frm: str, to: str, now: datetime, **values: object
) -> int:
    """Rows by id in state `frm` → `to`: for the rare paths (resume, webhooks, splits)."""
    return _set_many(session, ids, frm, to, now, **values)


def _set_many(
    session: Session, ids: Sequence[int], frm: str, to: str, now: datetime, **values: object
) -> int:
    if to == PLANNED:
        values["not_before"] = None  # planned rows are found by `not_before IS NULL`
    total = 0
    for start in range(0, len(ids), 1000):
        result = session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start : start + 1000]), Delivery.status == frm)
            .values(status=to, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        total += result.rowcount  # type: ignore[attr-defined]
    return total


def new_batch_id() -> str:
    """Increasing (nanosecond clock first, then randomness): new ids land at the end of the
    batch_id index instead of at random places in a large B-tree."""
    return f"{time.time_ns():016x}{secrets.token_hex(6)}"


def retag(session: Session, ids: Sequence[int], now: datetime) -> str:
    """Give part of a split batch a batch id of its own; returns it."""
    batch_id = new_batch_id()
    for start in range(0, len(ids), 1000):
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start : start + 1000]))
            .values(batch_id=batch_id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return batch_id


def record(
    session: Session, batch_id: str, size: int, outcomes: Sequence[Outcome], now: datetime
) -> None:
    """Write the provider's answers to rows still `submitted` (an early webhook event wins).

    The common case, every recipient of the batch answered alike (SendGrid: one message id per
    request), is one UPDATE on the batch id; anything else goes row by row.
    """
    first = outcomes[0] if outcomes else None
    if (
        first is not None
        and len(outcomes) == size
        and all(
            (o.status, o.provider_id, o.reason, o.not_before)
            == (first.status, first.provider_id, first.reason, first.not_before)
            for o in outcomes
        )
    ):
        move(
            session,
            batch_id,
            SUBMITTED,
            first.status,
            now,
            provider_message_id=first.provider_id,
            error=first.reason,
            not_before=first.not_before,
            attempts=D.c.attempts + 1,
        )
        return
    if outcomes:
        _record_each(session, outcomes, now)


def _record_each(session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Per-row answers (SMTP, outbox: a message id each) in one executemany. Core, not ORM:
    the ORM would read a list of parameter sets as a by-primary-key bulk update."""
    session.connection().execute(
        update(TABLE)
        .where(TABLE.c.id == bindparam("did"), TABLE.c.status == SUBMITTED)
        .values(
            status=bindparam("st"),
            provider_message_id=bindparam("pid"),
            error=bindparam("why"),
            not_before=bindparam("nb"),
            attempts=TABLE.c.attempts + 1,
            updated_at=now,
        ),
        [
            {
                "did": o.delivery_id,
                "st": o.status,
                "pid": o.provider_id,
                "why": o.reason,
                "nb": o.not_before,
            }
            for o in outcomes
        ],
    )


# --- reading the ledger -----------------------------------------------------------------------


def counts(session: Session, edition_id: int) -> Counter[str]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.status)
    )
    return Counter({status: int(n) for status, n in rows})


def pending(session: Session, edition_id: int) -> int:
    """Rows a worker may still claim (planned or deferred)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id, Delivery.status.in_((PLANNED, DEFERRED))
            )
        )
        or 0
    )


def next_due(session: Session, edition_id: int) -> datetime | None:
    """When the earliest deferred row may be tried again (None: nothing deferred)."""
    return session.scalar(
        select(func.min(Delivery.not_before)).where(
            Delivery.edition_id == edition_id, Delivery.status == DEFERRED
        )
    )


def orphans(session: Session, edition_id: int, live: Sequence[int], status: str) -> list[int]:
    """Ids of rows in `status` that no live worker owns (their worker crashed)."""
    query = select(Delivery.id).where(Delivery.edition_id == edition_id, Delivery.status == status)
    if live:
        query = query.where(or_(Delivery.worker_id.is_(None), Delivery.worker_id.not_in(live)))
    return list(session.scalars(query.order_by(Delivery.id)))


def sent_since(session: Session, since: datetime) -> int:
    """Messages handed to the provider since `since`, over every edition (warm-up caps)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.status.in_((SUBMITTED, ACCEPTED)), Delivery.updated_at >= since
            )
        )
        or 0
    )


def undelivered(session: Session, edition_id: int, *, everyone: bool) -> Iterator[Delivery]:
    """Rows for the report: with everyone=False only those who did not get the edition."""
    query = select(Delivery).where(Delivery.edition_id == edition_id)
    if not everyone:
        query = query.where(Delivery.status != ACCEPTED)
    yield from session.scalars(query.order_by(Delivery.id).execution_options(yield_per=2000))
