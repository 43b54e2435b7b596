"""A person's rights over their data, across both packages: access (GDPR Art. 15/20) and
erasure (Art. 17). subscribers/ knows the subscriber, their consent history and the suppression
list; digest's delivery ledger also holds their address and what was sent to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.models import Delivery
from digest.tally import effective_rows
from subscribers.export import person_record
from subscribers.lifecycle import erase, get_by_email
from subscribers.models import Subscriber

# What an erased person's ledger rows keep instead of their address.
ERASED_ADDRESS = "erased"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


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


def export_person(session: Session, email: str, keys: Sequence[str]) -> dict[str, Any]:
    """Everything held about one person, as JSON-ready data."""
    sub = get_by_email(session, email)
    record = person_record(session, sub, keys)
    record["deliveries"] = deliveries_of(session, sub)
    return record


def erase_person(session: Session, email: str, *, now: datetime, keys: Sequence[str]) -> str:
    """Delete the person everywhere; the ledger keeps its counts but not their address.
    Returns the keyed hash left on the suppression list."""
    sub = get_by_email(session, email)
    session.execute(
        update(Delivery).where(Delivery.subscriber_id == sub.id).values(email=ERASED_ADDRESS)
    )
    return erase(session, sub, now=now, keys=keys)
