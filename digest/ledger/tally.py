"""Reading the ledger: counts per state, what is still to do, who is uncertain, the report rows.

A row's state is its own or else its batch's (digest.ledger). Counting a million rows one by one
would scan them all, so counts add up the batches' sizes per state, then move the few rows with a
state of their own (found through the partial index ix_deliveries_override) from their batch's
state to their own. Listings of single rows join each row to its batch instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, select
from sqlalchemy.orm import Session

from digest.ledger.moves import B, D, gone, orphan_rows
from digest.store.models import ACCEPTED, CLAIMED, DEFERRED, FAILED, PLANNED, SKIPPED, SUBMITTED

# A delivery as effective_rows() reads it.
LedgerRow = Row[*tuple[Any, ...]]
# A row and its batch (sends planned before batches existed have rows without one).
BATCH_OF_ROW = and_(B.c.edition_id == D.c.edition_id, B.c.id == D.c.batch_id)


def counts(session: Session, edition_id: int) -> Counter[str]:
    """Rows per effective state."""
    return _tally(session, edition_id, None)


def _tally(session: Session, edition_id: int | None, since: datetime | None) -> Counter[str]:
    """Rows per effective state, of one edition (None: every edition), and with `since` only
    rows whose state changed at or after it (a row that follows its batch changed with it)."""
    batches = select(B.c.status, func.sum(B.c.size)).group_by(B.c.status)
    own = select(D.c.status, func.count()).where(D.c.status.is_not(None)).group_by(D.c.status)
    left = (
        select(B.c.status, func.count())
        .select_from(D.join(B, BATCH_OF_ROW))
        .where(D.c.status.is_not(None))
        .group_by(B.c.status)
    )
    if edition_id is not None:
        batches = batches.where(B.c.edition_id == edition_id)
        own = own.where(D.c.edition_id == edition_id)
        left = left.where(D.c.edition_id == edition_id)
    if since is not None:
        batches = batches.where(B.c.updated_at >= since)
        own = own.where(D.c.updated_at >= since)
        left = left.where(B.c.updated_at >= since)
    total: Counter[str] = Counter()
    for status, n in session.execute(batches):
        total[status] += int(n or 0)
    for status, n in session.execute(own):
        total[status] += int(n)
    for status, n in session.execute(left):  # counted in their batch's size, but not its state
        total[status] -= int(n)
    return +total  # without the states nobody is in


def pending(session: Session, edition_id: int) -> int:
    """Rows a worker may still claim (planned or deferred)."""
    found = counts(session, edition_id)
    return found[PLANNED] + found[DEFERRED]


def settled_since(session: Session, edition_id: int, since: datetime) -> int:
    """Rows accepted, failed or skipped at or after `since` (the rate of a running send)."""
    found = _tally(session, edition_id, since)
    return found[ACCEPTED] + found[FAILED] + found[SKIPPED]


def sent_since(session: Session, since: datetime) -> int:
    """Messages handed to the provider since `since`, or claimed to be, over every edition
    (warm-up caps: another worker's claimed batch is on its way and counts already)."""
    found = _tally(session, None, since)
    return found[CLAIMED] + found[SUBMITTED] + found[ACCEPTED]


def next_due(session: Session, edition_id: int) -> datetime | None:
    """When the earliest deferred batch or row may be tried again (None: nothing deferred)."""
    batch = session.scalar(
        select(func.min(B.c.not_before)).where(
            B.c.edition_id == edition_id, B.c.status == DEFERRED, B.c.size > 0
        )
    )
    row = session.scalar(
        select(func.min(D.c.not_before)).where(D.c.edition_id == edition_id, D.c.status == DEFERRED)
    )
    return min((d for d in (batch, row) if d is not None), default=None)


def uncertain(session: Session, edition_id: int, live: Sequence[int]) -> list[int]:
    """Rows handed to the provider whose worker is gone: nobody knows whether they went out
    until ESP events say so (digest.reconcile)."""
    batches = select(B.c.id).where(
        B.c.edition_id == edition_id, B.c.status == SUBMITTED, gone(B.c.worker_id, live)
    )
    following = select(D.c.id).where(
        D.c.edition_id == edition_id,
        D.c.batch_id.in_(batches.scalar_subquery()),
        D.c.status.is_(None),
    )
    ids = list(session.scalars(following))
    ids += orphan_rows(session, edition_id, live, SUBMITTED)
    return sorted(ids)


# --- single rows ------------------------------------------------------------------------------


def effective_rows() -> Select[Any]:
    """Deliveries with their effective state: their own columns when they have a state of
    their own, else their batch's (add a WHERE on `deliveries`)."""
    own = D.c.status.is_not(None)

    def pick(row_column: Any, batch_column: Any, label: str) -> ColumnElement[Any]:
        return case((own, row_column), else_=batch_column).label(label)

    return select(
        D.c.id,
        D.c.edition_id,
        D.c.subscriber_id,
        D.c.email,
        D.c.variant,
        func.coalesce(D.c.status, B.c.status).label("status"),
        pick(D.c.error, B.c.error, "error"),
        pick(D.c.attempts, D.c.attempts + B.c.attempts, "attempts"),
        pick(D.c.not_before, B.c.not_before, "not_before"),
        pick(D.c.updated_at, B.c.updated_at, "updated_at"),
        func.coalesce(D.c.provider_message_id, B.c.provider_message_id).label(
            "provider_message_id"
        ),
        D.c.created_at,
        D.c.batch_id,
    ).select_from(D.outerjoin(B, BATCH_OF_ROW))


def undelivered(session: Session, edition_id: int, *, everyone: bool) -> Iterator[LedgerRow]:
    """Rows for the report: with everyone=False only those who did not get the edition."""
    query = effective_rows().where(D.c.edition_id == edition_id)
    if not everyone:
        query = query.where(func.coalesce(D.c.status, B.c.status) != ACCEPTED)
    yield from session.execute(query.order_by(D.c.id).execution_options(yield_per=2000))


def statuses(session: Session, edition_id: int) -> dict[int, str]:
    """Every row's effective state by delivery id (tests; small sends)."""
    query = effective_rows().where(D.c.edition_id == edition_id)
    return {row.id: row.status for row in session.execute(query)}


def pending_variants(session: Session, edition_id: int) -> dict[str, int]:
    """Recipients a resumed send may still reach (planned, deferred, or claimed by a worker that
    may be gone), per variant: what `send --dry-run` answers for a send under way."""
    rows = effective_rows().where(D.c.edition_id == edition_id).subquery()
    query = (
        select(rows.c.variant, func.count())
        .where(rows.c.status.in_((PLANNED, DEFERRED, CLAIMED)))
        .group_by(rows.c.variant)
    )
    return {str(variant): int(n) for variant, n in session.execute(query)}
