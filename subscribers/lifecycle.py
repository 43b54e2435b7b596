"""Who may be mailed, and the states a subscriber moves through.

Consent is enforced in `recipients_for` and nowhere else: every send asks it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from subscribers.models import (
    ACTIVE,
    BOUNCED,
    COMPLAINED,
    ERASED,
    UNSUBSCRIBED,
    Consent,
    Subscriber,
    Suppression,
)


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased; the one form we store and compare."""
    return email.strip().lower()


@dataclass(frozen=True)
class Audience:
    """One recipient as frozen at send start."""

    subscriber_id: int
    public_id: str
    email: str
    sections: tuple[str, ...]


def recipients_for(session: Session, sections: Sequence[str], now: datetime) -> Iterator[Audience]:
    """Active (hence confirmed), not paused, subscribed to at least one of `sections`.

    Streams in id order so a million subscribers never sit in memory at once. `sections` on an
    Audience is the intersection: what this subscriber gets from this edition.
    """
    wanted = tuple(sections)
    query = (
        select(Subscriber.id, Subscriber.public_id, Subscriber.email, Subscriber.sections)
        .where(Subscriber.status == ACTIVE, Subscriber.confirmed_at.is_not(None))
        .where(or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now))
        .order_by(Subscriber.id)
        .execution_options(yield_per=5000)
    )
    for sid, public_id, email, chosen in session.execute(query):
        mine = wanted if chosen is None else tuple(s for s in wanted if s in chosen)
        if mine:
            yield Audience(sid, public_id, email, mine)


def email_hash(email: str, key: str) -> str:
    """Keyed hash of the normalised address: what suppression keeps after erasure."""
    return hmac.new(key.encode(), normalise_email(email).encode(), hashlib.sha256).hexdigest()


def is_suppressed(session: Session, email: str, keys: Sequence[str]) -> bool:
    """Checked against every key, so that rotating DIGEST_SECRET_KEY keeps suppressions."""
    hashes = [email_hash(email, key) for key in keys]
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash.in_(hashes))) is not None
    )


# Suppression reasons → the status the subscriber ends in.
SUPPRESSION_STATUS = {
    "bounced": BOUNCED,
    "complained": COMPLAINED,
    "unsubscribed": UNSUBSCRIBED,
    "erased": ERASED,
}


def suppress(
    session: Session,
    subscriber: Subscriber,
    reason: str,
    *,
    now: datetime,
    keys: Sequence[str],
    source: str,
) -> None:
    """Stop mailing someone at once and for good (a hard bounce, a spam report, an ESP-side
    unsubscribe): status changes, the keyed hash goes on the suppression list, the event is kept
    as evidence. Idempotent."""
    status = SUPPRESSION_STATUS[reason]
    if subscriber.status != status:
        subscriber.status = status
        subscriber.updated_at = now
        if status == UNSUBSCRIBED:
            subscriber.unsubscribed_at = now
        subscriber.consents.append(
            Consent(
                event="unsubscribe" if status == UNSUBSCRIBED else reason,
                at=now,
                source=source,
                detail={"reason": reason},
            )
        )
    digest_hash = email_hash(subscriber.email, keys[0])
    if not is_suppressed(session, subscriber.email, keys):
        session.add(Suppression(email_hash=digest_hash, reason=reason, created_at=now))
