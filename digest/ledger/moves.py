"""The delivery ledger's moves (docs/design.md §3): batches move; a row keeps a state if it differs.

planned → claimed → submitted → accepted | failed | deferred, and skipped for whoever
unsubscribed before their batch was claimed. What moves is a SendBatch: claiming it
(digest.claims), marking it submitted and recording the provider's answer are one small UPDATE
each, however many recipients it holds. A Delivery follows its batch while its own `status` is
NULL, and gets a state of its own only when its state differs from the batch's: skipped at the
claim, an answer unlike the rest of the batch's, a webhook event, a resend. Its effective state
is its own or else its batch's (`effective_status`); every reader goes through that
(digest.tally), and every move of single rows here is guarded by it.

Each function runs inside the caller's short transaction; PostgreSQL workers share a send
through `FOR UPDATE SKIP LOCKED` on batch rows (digest.claims).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Table,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from digest.store.models import (
    CLAIMED,
    DEFERRED,
    PLANNED,
    SUBMITTED,
    Delivery,
    EditionSend,
    SendBatch,
)
from subscribers.fastsql import Prepared

# States that keep a send from being finished.
UNFINISHED = (PLANNED, CLAIMED, DEFERRED, SUBMITTED)
SKIP_REASON = "unsubscribed or paused before their batch was sent"
D = cast(Table, Delivery.__table__)
B = cast(Table, SendBatch.__table__)


def variant_key(sections: Sequence[str]) -> str:
    return "|".join(sections)


class Outcome(NamedTuple):
    """What to write for one delivery after the provider answered."""

    delivery_id: int
    status: str  # ACCEPTED, FAILED or DEFERRED
    provider_id: str | None = None
    reason: str | None = None
    not_before: datetime | None = None


# --- a row's effective state ------------------------------------------------------------------


def of_batch(column: Any) -> ScalarSelect[Any]:
    """`column` of the row's batch, as a correlated subquery on `deliveries` (NULL without one)."""
    return (
        select(column)
        .where(B.c.edition_id == D.c.edition_id, B.c.id == D.c.batch_id)
        .scalar_subquery()
    )


def effective_status() -> ColumnElement[str]:
    """A delivery's state: its own, or else its batch's."""
    return func.coalesce(D.c.status, of_batch(B.c.status))


def _own_attempts() -> ColumnElement[int]:
    """The row's tries so far, for a row that is about to get a state of its own: a row that
    followed its batch adds the batch's tries to those it had before joining it."""
    return case(
        (D.c.status.is_(None), D.c.attempts + func.coalesce(of_batch(B.c.attempts), 0)),
        else_=D.c.attempts,
    )


# --- moving batches ---------------------------------------------------------------------------


def move(
    session: Session,
    edition_id: int,
    batch: int,
    frm: str,
    to: str,
    now: datetime,
    *,
    held_by: int | None = None,
    **values: Any,
) -> bool:
    """A batch in state `frm` → `to`: one UPDATE, whatever its size. False when the batch was
    not in `frm` (someone else moved it), or, with `held_by`, not that worker's. Rows with a
    state of their own keep it."""
    if to == PLANNED:
        values.setdefault("not_before", None)
        values.setdefault("worker_id", None)
    statement = _move_statement(frm, to, held_by is not None, tuple(sorted(values)))
    params = {"e": edition_id, "b": batch, "now": now, "held": held_by, **values}
    # Compiled once, on the driver: SQLAlchemy's execution path costs more than the UPDATE.
    return bool(statement.execute(session.connection(), params).rowcount)


@lru_cache(maxsize=64)
def _move_statement(frm: str, to: str, held: bool, names: tuple[str, ...]) -> Prepared:
    """The UPDATE of `move`, built once per kind of move (a send makes two per batch: building
    a statement costs more than running it)."""
    where = [B.c.edition_id == bindparam("e"), B.c.id == bindparam("b"), B.c.status == frm]
    if held:
        where.append(B.c.worker_id == bindparam("held"))
    values = {name: bindparam(name, type_=B.c[name].type) for name in names}
    return Prepared(update(B).where(*where).values(status=to, updated_at=_NOW, **values))


_NOW = bindparam("now", type_=B.c.updated_at.type)


def new_batch(
    session: Session,
    edition_id: int,
    *,
    variant: str,
    status: str,
    now: datetime,
    worker_id: int | None = None,
    attempts: int = 0,
    not_before: datetime | None = None,
) -> int:
    """An empty batch with the edition's next number (rows join it with `retag`)."""
    number = session.execute(
        update(EditionSend)
        .where(EditionSend.edition_id == edition_id)
        .values(batches=EditionSend.batches + 1)
        .returning(EditionSend.batches)
    ).scalar_one()
    session.execute(
        insert(B).values(
            edition_id=edition_id,
            id=number - 1,
            variant=variant,
            status=status,
            size=0,
            worker_id=worker_id,
            attempts=attempts,
            not_before=not_before,
            created_at=now,
            updated_at=now,
        )
    )
    return int(number) - 1


def retag(
    session: Session,
    edition_id: int,
    batch: int,
    ids: Sequence[int],
    now: datetime,
    *,
    own_state: str | None = None,
) -> int:
    """Rows `ids` join `batch` and follow its state from now on. Only rows with the state
    `own_state` of their own (None: rows that follow their batch) move; their old batches'
    sizes shrink accordingly. Returns how many moved."""
    where = [D.c.edition_id == edition_id, D.c.id.in_(bindparam("ids", expanding=True))]
    where.append(D.c.status.is_(None) if own_state is None else D.c.status == own_state)
    moved = 0
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        old = Counter(session.scalars(select(D.c.batch_id).where(*where), {"ids": chunk}).all())
        values: dict[str, Any] = {"batch_id": batch, "updated_at": now}
        if own_state is not None:  # it follows the batch now: nothing of its own stays
            values.update(status=None, not_before=None, error=None, provider_message_id=None)
        result = session.execute(update(D).where(*where).values(**values), {"ids": chunk})
        moved += result.rowcount  # type: ignore[attr-defined]
        for old_batch, n in old.items():
            if old_batch is not None:
                _resize(session, edition_id, old_batch, -n)
    _resize(session, edition_id, batch, moved)
    return moved


def split_off(
    session: Session, edition_id: int, batch: int, ids: Sequence[int], now: datetime
) -> int:
    """Rows `ids` of `batch` leave it for a new batch in the same state, with the same worker
    and tries (a refused batch sent in parts); returns the new batch's number."""
    row = session.execute(
        select(B.c.variant, B.c.status, B.c.worker_id, B.c.attempts, B.c.not_before).where(
            B.c.edition_id == edition_id, B.c.id == batch
        )
    ).one()
    number = new_batch(
        session,
        edition_id,
        variant=row.variant,
        status=row.status,
        worker_id=row.worker_id,
        attempts=row.attempts,
        not_before=row.not_before,
        now=now,
    )
    retag(session, edition_id, number, ids, now)
    return number


def _resize(session: Session, edition_id: int, batch: int, delta: int) -> None:
    session.execute(
        update(B).where(B.c.edition_id == edition_id, B.c.id == batch).values(size=B.c.size + delta)
    )


# --- rows with a state of their own -----------------------------------------------------------


def move_ids(
    session: Session, ids: Sequence[int], frm: str, to: str, now: datetime, **values: Any
) -> int:
    """Rows by id whose effective state is `frm` → a state `to` of their own: for the rare
    paths (skips, webhooks, resume, answers that differ from their batch's)."""
    if to == PLANNED:
        values["not_before"] = None  # a planned row waits for nothing
    values.setdefault("attempts", _own_attempts())
    statement = (
        update(D)
        .where(D.c.id.in_(bindparam("ids", expanding=True)), effective_status() == frm)
        .values(status=to, updated_at=now, **values)
    )
    total = 0
    for start in range(0, len(ids), 1000):
        result = session.execute(statement, {"ids": list(ids[start : start + 1000])})
        total += result.rowcount  # type: ignore[attr-defined]
    return total


# --- the provider's answer --------------------------------------------------------------------


def record_all(
    session: Session, edition_id: int, batch: int, outcome: Outcome, now: datetime
) -> None:
    """Every row of a submitted batch got the same answer (SendGrid: one message id per
    request): one UPDATE. Rows that already have a state of their own keep it."""
    params = {
        "e": edition_id,
        "b": batch,
        "status": outcome.status,
        "error": outcome.reason,
        "not_before": outcome.not_before,
        "provider_message_id": outcome.provider_id,
        "now": now,
    }
    _RECORD_ALL.execute(session.connection(), params)


_RECORD_ALL = Prepared(
    update(B)
    .where(B.c.edition_id == bindparam("e"), B.c.id == bindparam("b"), B.c.status == SUBMITTED)
    .values(
        status=bindparam("status", type_=B.c.status.type),
        error=bindparam("error", type_=B.c.error.type),
        not_before=bindparam("not_before", type_=B.c.not_before.type),
        provider_message_id=bindparam("provider_message_id", type_=B.c.provider_message_id.type),
        attempts=B.c.attempts + 1,
        updated_at=_NOW,
    )
)


def record(
    session: Session,
    edition_id: int,
    batch: int,
    sent: Sequence[int],
    outcomes: Sequence[Outcome],
    now: datetime,
) -> None:
    """Write the provider's answer for a submitted batch whose rows `sent` went out.

    The batch takes the answer most of its rows got (SendGrid: every row the same, one message
    id per request: a single UPDATE); rows answered otherwise get their answer as a state of
    their own, and rows left out of the answer stay `submitted` (uncertain). Rows that already
    have a state of their own (an early webhook event) keep it.
    """
    if not outcomes:
        return
    key = Counter((o.status, o.reason, o.not_before) for o in outcomes).most_common(1)[0][0]
    same = [o for o in outcomes if (o.status, o.reason, o.not_before) == key]
    message_ids = {o.provider_id for o in same}
    tries = session.execute(
        update(B)
        .where(B.c.edition_id == edition_id, B.c.id == batch, B.c.status == SUBMITTED)
        .values(
            status=key[0],
            error=key[1],
            not_before=key[2],
            provider_message_id=next(iter(message_ids)) if len(message_ids) == 1 else None,
            attempts=B.c.attempts + 1,
            updated_at=now,
        )
        .returning(B.c.attempts)
    ).scalar_one_or_none()
    if tries is None:  # not submitted any more: nothing of ours to write
        return
    rows: list[dict[str, Any]] = [
        _own(o.delivery_id, o.status, o.reason, o.not_before, o.provider_id, tries)
        for o in outcomes
        if (o.status, o.reason, o.not_before) != key
    ]
    answered = {o.delivery_id for o in outcomes}
    # Left out of the answer: uncertain, the provider may have them (this try not counted).
    rows += [_own(i, SUBMITTED, None, None, None, tries - 1) for i in sent if i not in answered]
    if rows:
        _set_each(session, edition_id, batch, OWN_STATE, rows, now)
    if len(message_ids) > 1:  # a message id per row (SMTP, outbox)
        ids = [{"n_id": o.delivery_id, "n_provider_message_id": o.provider_id} for o in same]
        _set_each(session, edition_id, batch, ("provider_message_id",), ids, now)


OWN_STATE = ("status", "error", "not_before", "provider_message_id", "attempts")


def _own(
    delivery_id: int,
    status: str,
    error: str | None,
    not_before: datetime | None,
    provider_id: str | None,
    tries: int,
) -> dict[str, Any]:
    return {
        "n_id": delivery_id,
        "n_status": status,
        "n_error": error,
        "n_not_before": not_before,
        "n_provider_message_id": provider_id,
        "n_attempts": tries,
    }


def _set_each(
    session: Session,
    edition_id: int,
    batch: int,
    columns: Sequence[str],
    rows: list[dict[str, Any]],
    now: datetime,
) -> None:
    """One executemany over rows of `batch` that still follow it, setting `columns` from each
    row's `n_<column>` (attempts: added to the row's own). Core, not ORM: the ORM would read
    a list of parameter sets as a by-primary-key bulk update."""
    values: dict[str, Any] = {"updated_at": now}
    for name in columns:
        value: Any = bindparam(f"n_{name}")
        values[name] = D.c.attempts + value if name == "attempts" else value
    statement = (
        update(D)
        .where(
            D.c.edition_id == edition_id,
            D.c.batch_id == batch,
            D.c.id == bindparam("n_id"),
            D.c.status.is_(None),
        )
        .values(**values)
    )
    session.connection().execute(statement, rows)


# --- after a crash ----------------------------------------------------------------------------


def gone(worker: ColumnElement[Any], live: Sequence[int]) -> ColumnElement[bool]:
    """The batch's worker is gone (or it never had one): nobody else is sending it."""
    return or_(worker.is_(None), worker.not_in(live)) if live else true()


def orphan_rows(session: Session, edition_id: int, live: Sequence[int], status: str) -> list[int]:
    """Rows with the state `status` of their own whose batch no live worker holds (and rows of
    sends planned before batches existed, which have none)."""
    batch = B.c.edition_id == D.c.edition_id, B.c.id == D.c.batch_id
    query = (
        select(D.c.id)
        .select_from(D.outerjoin(B, batch[0] & batch[1]))
        .where(D.c.edition_id == edition_id, D.c.status == status, gone(B.c.worker_id, live))
        .order_by(D.c.id)
    )
    return list(session.scalars(query))


def release_orphans(session: Session, edition_id: int, live: Sequence[int], now: datetime) -> int:
    """Batches claimed by workers that are gone go back to planned; returns how many rows."""
    numbers = list(
        session.scalars(
            update(B)
            .where(B.c.edition_id == edition_id, B.c.status == CLAIMED, gone(B.c.worker_id, live))
            .values(status=PLANNED, worker_id=None, not_before=None, updated_at=now)
            .returning(B.c.id)
        )
    )
    released = 0
    if numbers:
        following = select(func.count()).where(
            D.c.edition_id == edition_id, D.c.batch_id.in_(numbers), D.c.status.is_(None)
        )
        released = int(session.scalar(following) or 0)
    orphans = orphan_rows(session, edition_id, live, CLAIMED)
    return released + move_ids(session, orphans, CLAIMED, PLANNED, now)
