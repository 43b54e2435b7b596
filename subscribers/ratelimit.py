"""How many confirmation emails one address may receive: the defence against list bombing.

Subscription bombing submits a victim's address to many forms; double opt-in means each form
sends only a confirmation, and this limit means it sends at most one per interval and a few a
day (docs/standards.md §5). The count lives in the database, keyed by the address's keyed hash, so
every web process and the CLI share it and it holds no address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from subscribers.models import ConfirmationSend

DAY = timedelta(days=1)


@dataclass(frozen=True)
class ConfirmationLimits:
    """At most one email per `min_interval` and `daily_cap` per rolling 24 hours, per address."""

    min_interval: timedelta = timedelta(minutes=10)
    daily_cap: int = 3

    def __post_init__(self) -> None:
        if self.min_interval <= timedelta(0) or self.daily_cap < 1:
            raise ValueError("min_interval must be positive and daily_cap at least 1")


def allowed(session: Session, hashes: list[str], now: datetime, limits: ConfirmationLimits) -> bool:
    """Whether one more email to this address fits in both limits (hashes: one per key)."""
    since_day = now - DAY
    latest, count = session.execute(
        select(func.max(ConfirmationSend.sent_at), func.count()).where(
            ConfirmationSend.email_hash.in_(hashes), ConfirmationSend.sent_at > since_day
        )
    ).one()
    if count >= limits.daily_cap:
        return False
    return latest is None or now - latest >= limits.min_interval


def take(
    session: Session, hashes: list[str], kind: str, now: datetime, limits: ConfirmationLimits
) -> int | None:
    """Reserve one email for the address: the row's id (unique: it names the outbox file), or
    None when the address has had its share. Safe against a second process doing the same:
    the (hash, slot) unique constraint lets only one of them in."""
    if not allowed(session, hashes, now, limits):
        return None
    slot = int(now.timestamp() // limits.min_interval.total_seconds())
    row = ConfirmationSend(email_hash=hashes[0], slot=slot, kind=kind, sent_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row.id


def purge(session: Session, now: datetime) -> int:
    """Forget sends older than a day: they no longer count towards any limit."""
    result = session.execute(delete(ConfirmationSend).where(ConfirmationSend.sent_at <= now - DAY))
    return int(getattr(result, "rowcount", 0) or 0)
