"""The suppression list: addresses that must not be mailed, kept only as keyed hashes.

ICO and the CAP Code say to suppress rather than delete people who objected, so they are not
re-added (docs/standards.md §4). A keyed hash (HMAC-SHA256 of the normalised address) lets us
recognise an address without keeping it, which is what erasure leaves behind.

The invariant that `recipients_for` relies on: a suppressed address is never `active`. Every
path that makes someone active checks this list first (operators' imports and adds refuse,
a new double opt-in lifts the entry), and every path that suppresses moves the status away
from `active`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from subscribers.addresses import normalise_email
from subscribers.consent import Evidence, record
from subscribers.models import (
    BOUNCED,
    COMPLAINED,
    ERASED,
    UNSUBSCRIBED,
    Subscriber,
    Suppression,
)

# Suppression reasons after which nothing, not even a confirmation, is sent to the address.
UNDELIVERABLE = ("bounced", "complained")
# Suppression reasons -> the status the subscriber ends in.
SUPPRESSION_STATUS = {
    "bounced": BOUNCED,
    "complained": COMPLAINED,
    "unsubscribed": UNSUBSCRIBED,
    "erased": ERASED,
}


def email_hash(email: str, key: str) -> str:
    """Keyed hash of the normalised address: what suppression keeps after erasure."""
    return hmac.digest(key.encode(), normalise_email(email).encode(), "sha256").hex()


def email_hashes(email: str, keys: Sequence[str]) -> list[str]:
    """One hash per key, so that rotating DIGEST_SECRET_KEY keeps recognising old entries."""
    return [email_hash(email, key) for key in keys]


def suppression_for(session: Session, email: str, keys: Sequence[str]) -> Suppression | None:
    return session.scalars(
        select(Suppression).where(Suppression.email_hash.in_(email_hashes(email, keys)))
    ).first()


def undeliverable(session: Session, email: str, keys: Sequence[str]) -> str | None:
    """The reason, if the address must get no email at all, not even a confirmation: it
    bounced (there is no such mailbox, and mail to it costs the sender's reputation) or its
    owner reported us as spam. Someone who unsubscribed or was erased may still ask to come
    back: a new double opt-in sends them a confirmation."""
    entry = suppression_for(session, email, keys)
    return entry.reason if entry is not None and entry.reason in UNDELIVERABLE else None


def is_suppressed(session: Session, email: str, keys: Sequence[str]) -> bool:
    """Checked against every key, so that rotating DIGEST_SECRET_KEY keeps suppressions."""
    return suppression_for(session, email, keys) is not None


def add_suppression(
    session: Session, email: str, reason: str, *, now: datetime, keys: Sequence[str]
) -> str:
    """Put the address on the list (idempotent); returns the hash under the newest key."""
    if reason not in SUPPRESSION_STATUS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    digest_hash = email_hash(email, keys[0])
    if not is_suppressed(session, email, keys):
        session.add(Suppression(email_hash=digest_hash, reason=reason, created_at=now))
        session.flush()
    return digest_hash


def lift_suppression(session: Session, email: str, keys: Sequence[str]) -> None:
    """Only a fresh double opt-in may do this: the person asked again and proved the mailbox."""
    session.execute(
        delete(Suppression).where(Suppression.email_hash.in_(email_hashes(email, keys)))
    )


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
    suppress_with_evidence(
        session, subscriber, reason, now=now, keys=keys, evidence=Evidence(source=source)
    )


def suppress_with_evidence(
    session: Session,
    subscriber: Subscriber,
    reason: str,
    *,
    now: datetime,
    keys: Sequence[str],
    evidence: Evidence,
) -> bool:
    """`suppress`, keeping the request's IP and user agent; True if anything changed."""
    status = SUPPRESSION_STATUS[reason]
    changed = subscriber.status != status
    if changed:
        subscriber.status = status
        subscriber.updated_at = now
        if status == UNSUBSCRIBED:
            subscriber.unsubscribed_at = now
        event = "unsubscribe" if status == UNSUBSCRIBED else reason
        record(subscriber, event, evidence, now, reason=reason)
    # An open confirmation link must not bring back someone who just left or complained.
    subscriber.confirm_nonce = None
    subscriber.requested_name = subscriber.requested_sections = None
    add_suppression(session, subscriber.email, reason, now=now, keys=keys)
    return changed
