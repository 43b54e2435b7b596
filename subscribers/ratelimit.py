"""How many confirmation emails one address may receive: the defence against list bombing;
and who counts as one client for the per-IP limits.

Subscription bombing submits a victim's address to many forms; double opt-in means each form
sends only a confirmation, and this limit means it sends at most one per interval and a few a
day (docs/standards.md §5). The count lives in the database, keyed by the keyed hash of the
address's canonical mailbox (subscribers.addresses.canonical_mailbox: victim+1@ and victim+2@
are one inbox), so every web process and the CLI share it and it holds no address.

An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses; providers hand out /64s
or larger), so counting single IPv6 addresses would give one client 2**64 allowances:
`client_key` counts the /64.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from subscribers.models import ConfirmationSend

DAY = timedelta(days=1)
IPV6_PREFIX = 64


def client_key(ip: str) -> str:
    """The key a per-IP limit counts for a client address: an IPv4 address as it is, an IPv6
    address's /64 network ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as its IPv4
    address. Text that is no IP address (uvicorn's "unknown", a test client's name) is its
    own key. Pure: the same text gives the same key in every process."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


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
