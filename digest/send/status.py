"""Watching and steering a send: counts per state, rate and ETA, cancel, the failure report."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.edition import lifecycle
from digest.edition.queries import get_edition
from digest.errors import EditionStateError, NotFoundError
from digest.ledger import registry, tally
from digest.ledger.tally import LedgerRow
from digest.store.models import (
    APPROVED,
    CLAIMED,
    DEFERRED,
    DRAFT,
    PLANNED,
    SEND_CANCELLED,
    SEND_FINISHED,
    SENDING,
    SUBMITTED,
    LinkClick,
)
from subscribers.csvcells import csv_cell

RATE_WINDOW = timedelta(seconds=60)


@dataclass
class SendStatus:
    edition_id: int
    edition_status: str
    state: str
    planned: int
    counts: Counter[str]
    started_at: datetime
    live_workers: list[int]
    uncertain: int
    rate: float  # recipients settled per second over the last minute
    eta_s: float | None
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    top_links: list[tuple[str, int]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return sum(self.counts[s] for s in (PLANNED, CLAIMED, DEFERRED))


def status(session: Session, edition_id: int, now: datetime, worker_timeout: int) -> SendStatus:
    edition = get_edition(session, edition_id)
    sent = registry.send_state(session, edition.id)
    if sent is None:
        raise NotFoundError(f"edition {edition.id} has not been sent (status {edition.status})")
    counts = tally.counts(session, edition.id)
    live = registry.live_workers(session, edition.id, now, worker_timeout)
    uncertain = len(tally.uncertain(session, edition.id, live))
    recent = tally.settled_since(session, edition.id, now - RATE_WINDOW)
    rate = recent / RATE_WINDOW.total_seconds()
    result = SendStatus(
        edition_id=edition.id,
        edition_status=edition.status,
        state=sent.state,
        planned=sent.planned,
        counts=counts,
        started_at=sent.started_at,
        live_workers=live,
        uncertain=uncertain,
        rate=rate,
        eta_s=None,
        opens=sent.opens,
        machine_opens=sent.machine_opens,
        clicks=sent.clicks,
    )
    if rate > 0 and result.remaining:
        result.eta_s = result.remaining / rate
    result.top_links = [
        (url, clicks)
        for url, clicks in session.execute(
            select(LinkClick.url, LinkClick.clicks)
            .where(LinkClick.edition_id == edition.id)
            .order_by(LinkClick.clicks.desc(), LinkClick.url)
            .limit(10)
        )
    ]
    return result


def cancel(session: Session, edition_id: int, now: datetime, actor: str | None = None) -> int:
    """Stop claiming batches; batches already claimed finish. Returns the rows left unsent.
    With `actor` (a staff member), the cancel is kept in the edition's history."""
    registry.write_first(session)
    edition = get_edition(session, edition_id)
    sent = registry.send_state(session, edition.id)
    if edition.status != SENDING or sent is None:
        hint = (
            f" (to call the edition off: `digest edition cancel {edition.id}`)"
            if edition.status in (DRAFT, APPROVED)
            else ""
        )
        raise EditionStateError(
            f"edition {edition.id} is {edition.status}, not being sent: no send to cancel{hint}"
        )
    if sent.state == SEND_FINISHED:
        raise EditionStateError(f"edition {edition.id} has finished sending: nothing to cancel")
    if sent.state != SEND_CANCELLED:
        registry.set_state(session, edition.id, SEND_CANCELLED, now)
    left = tally.pending(session, edition.id)
    if actor is not None:
        lifecycle.record(
            session, edition, "send cancelled", actor, now, detail=f"{left} recipients not sent"
        )
    return left


REPORT_COLUMNS = ("delivery_id", "email", "status", "reason", "attempts", "updated_at")


def _why(row: LedgerRow, cancelled: bool) -> str:
    if row.status == SUBMITTED:
        return "uncertain: handed to the provider, no confirmation yet"
    if row.status in (PLANNED, DEFERRED, CLAIMED) and cancelled:
        return "not sent: the send was cancelled" + (f" ({row.error})" if row.error else "")
    if row.status in (PLANNED, CLAIMED):
        return "not sent yet"
    return row.error or ""


def report_rows(
    session: Session, edition_id: int, *, failed_only: bool
) -> Iterator[tuple[str, ...]]:
    edition = get_edition(session, edition_id)
    sent = registry.send_state(session, edition.id)
    if sent is None:
        raise NotFoundError(f"edition {edition.id} has not been sent (status {edition.status})")
    cancelled = sent.state == SEND_CANCELLED
    for row in tally.undelivered(session, edition.id, everyone=not failed_only):
        yield (
            str(row.id),
            row.email,
            row.status,
            _why(row, cancelled),
            str(row.attempts),
            row.updated_at.isoformat(),
        )


def write_report(out: TextIO, rows: Iterator[tuple[str, ...]]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    n = 0
    for row in rows:
        # An address or a provider's message can start with "=": no cell may run as a formula.
        writer.writerow([csv_cell(cell) for cell in row])
        n += 1
    return n
