"""A person's rights over their data, across both packages: access (GDPR Art. 15/20) and
erasure (Art. 17). subscribers/ knows the subscriber, their consent history and the suppression
list; digest's delivery ledger also holds their address and what was sent to them, and the
SendGrid events we stored say what became of it (and may quote the address).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from digest.errors import NotFoundError, UsageError
from digest.ledger.tally import effective_rows
from digest.store.models import Delivery, SendBatch, WebhookEvent
from subscribers.export import person_record
from subscribers.lifecycle import erase, get_by_email
from subscribers.models import Subscriber

# What an erased person's ledger rows keep instead of their address, and what replaces the
# address in provider messages and stored events.
ERASED_ADDRESS = "erased"
# The stored event's detail, by event: what it means to the person reading their export.
DETAIL_MEANS = {"bounce": "reason", "dropped": "reason", "click": "url"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def scrub(text: str, addresses: Iterable[str]) -> str:
    """`text` with every address replaced, in any letter case: provider messages quote the
    recipient ("550 5.1.1 <jane@example.com>: no such user") however they spelt it."""
    for address in sorted(set(addresses), key=len, reverse=True):
        if address:
            text = re.sub(re.escape(address), ERASED_ADDRESS, text, flags=re.IGNORECASE)
    return text


def spellings(address: str) -> list[str]:
    """How stored text may hold an address: as is, and percent-encoded (in a clicked URL)."""
    plain = address.strip().lower()
    return [plain, quote(plain, safe="")] if plain else []


def _scrub_json(value: Any, addresses: Sequence[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, addresses)
    if isinstance(value, list):
        return [_scrub_json(v, addresses) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), addresses): _scrub_json(v, addresses) for k, v in value.items()}
    return value


def deliveries_of(session: Session, sub: Subscriber) -> list[dict[str, Any]]:
    """What was sent to them: each ledger row as it stands (its state, or its batch's)."""
    rows = session.execute(
        effective_rows().where(Delivery.subscriber_id == sub.id).order_by(Delivery.id)
    )
    return [
        {
            "edition_id": d.edition_id,
            "sections": d.variant.split("|") if d.variant else [],
            "status": d.status,
            "planned_at": _iso(d.created_at),
            "updated_at": _iso(d.updated_at),
            "error": d.error,
        }
        for d in rows
    ]


def _their_events(sub_id: int) -> ColumnElement[bool]:
    """Events stored about them: attributed to them, or naming one of their deliveries (an
    event is attributed when it arrives; a delivery is theirs for good)."""
    theirs = select(Delivery.id).where(Delivery.subscriber_id == sub_id).scalar_subquery()
    return or_(WebhookEvent.subscriber_id == sub_id, WebhookEvent.delivery_id.in_(theirs))


def events_of(session: Session, sub: Subscriber) -> list[dict[str, Any]]:
    """What SendGrid told us about their mail, in the order it arrived."""
    rows = session.scalars(
        select(WebhookEvent).where(_their_events(sub.id)).order_by(WebhookEvent.id)
    )
    return [
        {
            "event": e.event,
            "edition_id": e.edition_id,
            "occurred_at": _iso(e.occurred_at),
            "received_at": _iso(e.received_at),
            "reason": e.detail if DETAIL_MEANS.get(e.event) == "reason" else None,
            "url": e.detail if DETAIL_MEANS.get(e.event) == "url" else None,
        }
        for e in rows
    ]


def export_person(session: Session, email: str, keys: Sequence[str]) -> dict[str, Any]:
    """Everything held about one person, as JSON-ready data."""
    sub = get_by_email(session, email)
    record = person_record(session, sub, keys)
    record["deliveries"] = deliveries_of(session, sub)
    record["webhook_events"] = events_of(session, sub)
    return record


def _addresses(session: Session, sub: Subscriber) -> list[str]:
    """Every spelling of their address that stored text may hold: today's, the one frozen in
    each delivery (they may have changed it since), and percent-encoded (in clicked URLs)."""
    frozen = session.scalars(
        select(Delivery.email).where(Delivery.subscriber_id == sub.id).distinct()
    )
    kept = (a for a in (sub.email, *frozen) if a != ERASED_ADDRESS)
    return sorted({spelling for address in kept for spelling in spellings(address)})


def _naming(column: Any, addresses: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(column.icontains(a, autoescape=True) for a in addresses))


def _scrub_deliveries(session: Session, sub_id: int, addresses: Sequence[str]) -> None:
    """Their rows keep state, counts and batch; the address goes, from the provider's messages
    too."""
    mine = Delivery.subscriber_id == sub_id
    session.execute(update(Delivery).where(mine).values(email=ERASED_ADDRESS))
    rows = session.execute(
        select(Delivery.id, Delivery.error, Delivery.detail).where(
            mine, or_(Delivery.error.is_not(None), Delivery.detail.is_not(None))
        )
    ).all()
    for delivery_id, error, detail in rows:
        values: dict[str, Any] = {}  # a JSON None would store JSON null, not SQL NULL
        if error is not None:
            values["error"] = scrub(error, addresses)
        if detail is not None:
            values["detail"] = _scrub_json(detail, addresses)
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def _scrub_batches(session: Session, addresses: Sequence[str]) -> None:
    """A batch of one (a refused batch is split down to single rows) keeps the SMTP answer
    about that one recipient as the batch's error, which its rows show as theirs."""
    rows = session.execute(
        select(SendBatch.edition_id, SendBatch.id, SendBatch.error).where(
            _naming(SendBatch.error, addresses)
        )
    ).all()
    for edition_id, batch_id, error in rows:
        session.execute(
            update(SendBatch)
            .where(SendBatch.edition_id == edition_id, SendBatch.id == batch_id)
            .values(error=scrub(error or "", addresses))
        )


def _scrub_events(session: Session, sub_id: int, addresses: Sequence[str]) -> None:
    """Stored events keep what dedupe, counts and reconciliation read (sg_event_id, event,
    edition, delivery, times, the detail without the address), but no longer point at the
    person: a subscriber id may be handed out again (SQLite reuses the highest), and their
    old `blocked` bounces must not count against whoever gets it."""
    session.execute(update(WebhookEvent).where(_their_events(sub_id)).values(subscriber_id=None))
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.detail).where(_naming(WebhookEvent.detail, addresses))
    ).all()
    for event_id, detail in rows:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(detail=scrub(detail or "", addresses))
        )


def erase_person(session: Session, email: str, *, now: datetime, keys: Sequence[str]) -> str:
    """Delete the person everywhere; the ledger and the stored events keep their counts but
    not their address. Returns the keyed hash left on the suppression list."""
    sub = get_by_email(session, email)
    addresses = _addresses(session, sub)
    _scrub_events(session, sub.id, addresses)  # before their deliveries stop naming them
    _scrub_deliveries(session, sub.id, addresses)
    _scrub_batches(session, addresses)
    return erase(session, sub, now=now, keys=keys)


def find_public_id(session: Session, public_id: str) -> Subscriber:
    """The subscriber with this opaque id (staff pages name people by it, never by address)."""
    sub = session.scalar(select(Subscriber).where(Subscriber.public_id == public_id))
    if sub is None:
        raise NotFoundError("no such subscriber (erased, or a wrong address)")
    return sub


def erase_confirmed(
    session: Session, public_id: str, typed: str, *, now: datetime, keys: Sequence[str]
) -> str:
    """Erasure as staff ask for it in the console: the person's address typed again confirms
    it (erasure cannot be undone, and a list of look-alike addresses invites a slip)."""
    sub = find_public_id(session, public_id)
    if typed.strip().lower() != sub.email.lower():
        raise UsageError(
            "to erase this subscriber, type their email address exactly as shown; nothing was "
            "erased"
        )
    return erase_person(session, sub.email, now=now, keys=keys)
