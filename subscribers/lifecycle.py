"""Who may be mailed, and the states a subscriber moves through.

Consent is enforced in `recipients_for` and nowhere else: every send asks it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from subscribers.models import ACTIVE, Subscriber


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
