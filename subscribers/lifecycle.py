"""The states a subscriber moves through, and the one place each move happens.

    (nobody) --subscribe--> pending --confirm--> active --unsubscribe--> unsubscribed
                                                   |                         |
                                        preferences, pause        subscribe again (a new
                                                                  double opt-in) --confirm--> active
    any state --erase--> (deleted; only the keyed hash stays on the suppression list)

Every function takes the Session (the caller owns the transaction), the signing keys and `now`;
none sends email. The ones that need an email sent return a `Notice`, which the caller sends
after committing. Consent is enforced in `recipients_for` (re-exported here) and nowhere else;
`recipients_query` and `sections_for` are its two halves, for the send planner's SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from subscribers.addresses import normalise_email, validate_email
from subscribers.audience import Audience, recipients_for, recipients_query, sections_for
from subscribers.consent import ADMIN_ADD, PAUSE, PREFERENCES, RESUME, Evidence, record
from subscribers.errors import InvalidPause, Suppressed
from subscribers.models import ACTIVE, Subscriber, new_public_id
from subscribers.names import clean_name
from subscribers.optin import (
    ALREADY_CONFIRMED,
    ALREADY_SUBSCRIBED,
    CONFIRMATION,
    CONFIRMED,
    EXPIRED,
    INVALID,
    READY,
    ConfirmResult,
    Notice,
    StaffRequest,
    check_confirmation,
    confirm,
    pending_emails,
    purge_pending,
    resend_confirmation,
    resubscribe,
    staff_subscribe,
    subscribe,
)
from subscribers.policy import (
    Policy,
    check_sections,
    find_by_email,
    find_by_public_id,
    get_by_email,
)
from subscribers.suppression import (
    SUPPRESSION_STATUS,
    add_suppression,
    email_hash,
    is_suppressed,
    suppress,
    suppress_with_evidence,
    suppression_for,
)

__all__ = [
    "ALREADY_CONFIRMED",
    "ALREADY_SUBSCRIBED",
    "CONFIRMATION",
    "CONFIRMED",
    "EXPIRED",
    "INVALID",
    "READY",
    "SUPPRESSION_STATUS",
    "Audience",
    "ConfirmResult",
    "Notice",
    "Policy",
    "StaffRequest",
    "add_confirmed",
    "check_confirmation",
    "check_sections",
    "confirm",
    "email_hash",
    "erase",
    "find_by_email",
    "find_by_public_id",
    "get_by_email",
    "is_suppressed",
    "normalise_email",
    "pause",
    "pending_emails",
    "purge_pending",
    "recipients_for",
    "recipients_query",
    "resend_confirmation",
    "resubscribe",
    "resume",
    "sections_for",
    "set_sections",
    "staff_subscribe",
    "subscribe",
    "suppress",
    "unsubscribe",
]


def unsubscribe(
    session: Session,
    sub: Subscriber,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
    section: str | None = None,
) -> bool:
    """Leave everything (suppressed at once), or one section; True if anything changed.
    Leaving the last section one gets is leaving everything."""
    if section is None:
        return suppress_with_evidence(
            session, sub, "unsubscribed", now=now, keys=keys, evidence=evidence
        )
    check_sections([section], policy.sections)
    current = list(policy.sections) if sub.sections is None else list(sub.sections)
    if section not in current:
        return False
    remaining = [s for s in current if s != section]
    if not remaining:
        return unsubscribe(session, sub, evidence=evidence, now=now, keys=keys, policy=policy)
    sub.sections = remaining
    sub.updated_at = now
    record(sub, PREFERENCES, evidence, now, unsubscribed_from=section, sections=remaining)
    return True


def set_sections(
    sub: Subscriber,
    sections: Sequence[str],
    *,
    evidence: Evidence,
    now: datetime,
    policy: Policy,
) -> bool:
    """The preference center's choice of sections; at least one (leaving is its own button)."""
    chosen = check_sections(sections, policy.sections, allow_all=False)
    if chosen == sub.sections:
        return False
    record(sub, PREFERENCES, evidence, now, before=sub.sections, sections=chosen)
    sub.sections = chosen
    sub.updated_at = now
    return True


def pause(
    sub: Subscriber, weeks: int, *, evidence: Evidence, now: datetime, policy: Policy
) -> datetime:
    """No email until `weeks` from now; recipients_for skips paused subscribers."""
    if not 1 <= weeks <= policy.max_pause_weeks:
        raise InvalidPause(f"pause for 1 to {policy.max_pause_weeks} weeks, not {weeks}")
    until = now + timedelta(weeks=weeks)
    sub.paused_until = until
    sub.updated_at = now
    record(sub, PAUSE, evidence, now, weeks=weeks, until=until.isoformat())
    return until


def resume(sub: Subscriber, *, evidence: Evidence, now: datetime) -> bool:
    if sub.paused_until is None or sub.paused_until <= now:
        sub.paused_until = None
        return False
    sub.paused_until = None
    sub.updated_at = now
    record(sub, RESUME, evidence, now)
    return True


def add_confirmed(
    session: Session,
    raw_email: str,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
    name: str | None = None,
    sections: Sequence[str] | None = None,
) -> bool:
    """An operator adds someone whose consent they hold elsewhere (evidence.source says where).
    Never re-adds a suppressed address; True if anything changed."""
    email = validate_email(raw_email)
    clean = clean_name(name)
    chosen = check_sections(sections, policy.sections)
    entry = suppression_for(session, email, keys)
    if entry is not None:
        raise Suppressed(
            f"{email} is on the suppression list ({entry.reason}); only the person can "
            "subscribe again, through the form (double opt-in)"
        )
    sub = find_by_email(session, email)
    if sub is not None and sub.status == ACTIVE:
        return False
    if sub is None:
        sub = Subscriber(public_id=new_public_id(), email=email, created_at=now)
        session.add(sub)
    sub.name = clean or sub.name
    sub.sections = chosen
    sub.status = ACTIVE
    sub.confirmed_at = now
    sub.confirm_nonce = None
    sub.requested_name = sub.requested_sections = None
    sub.updated_at = now
    record(sub, ADMIN_ADD, evidence, now, sections=chosen)
    return True


def erase(session: Session, sub: Subscriber, *, now: datetime, keys: Sequence[str]) -> str:
    """GDPR Art. 17: delete the person and their consent history; keep only the keyed hash on
    the suppression list so an import cannot add them back (docs/standards.md §4). Returns it."""
    digest_hash = add_suppression(session, sub.email, "erased", now=now, keys=keys)
    session.delete(sub)
    session.flush()
    return digest_hash
