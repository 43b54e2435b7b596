"""Double opt-in: a request makes someone pending and mails one confirmation link; only that
link, used within its lifetime and only once, makes them active.

Google asks bulk senders for it ("double consent") and it is the defence against list bombing:
the only email an unconfirmed address ever gets is the confirmation, at most once per interval
and a few times a day (docs/standards.md §4, §5). Nothing here sends email: functions that need one
return a `Notice`, which the caller sends after committing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from subscribers import ratelimit
from subscribers.addresses import canonical_mailbox, validate_email
from subscribers.consent import CONFIRM, SUBSCRIBE, SUBSCRIBE_REFUSED, Evidence, record
from subscribers.models import ACTIVE, PENDING, Subscriber, new_public_id
from subscribers.names import clean_name
from subscribers.policy import Policy, check_sections, find_by_email, find_by_public_id
from subscribers.suppression import email_hashes, lift_suppression, undeliverable
from subscribers.tokens import (
    MANAGE,
    TokenError,
    TokenExpired,
    make_confirm_token,
    make_token,
    read_confirm_token,
)

logger = logging.getLogger("subscribers")

# Notice kinds: what the caller must email.
CONFIRMATION = "confirm"
ALREADY_SUBSCRIBED = "already"


@dataclass(frozen=True)
class Notice:
    """An email to send once the transaction has committed: a confirmation link (kind
    "confirm") or, for someone already subscribed, a link to their preferences ("already")."""

    kind: str
    email: str = field(repr=False)
    public_id: str
    token: str = field(repr=False)
    send_id: int


def subscribe(
    session: Session,
    raw_email: str,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
    name: str | None = None,
    sections: Sequence[str] | None = None,
) -> Notice | None:
    """A subscribe request: pending plus one confirmation email, rate limited per mailbox.

    The caller answers the same whatever happens here (known address, rate limited,
    suppressed, new), so the form cannot be used to find out who subscribes
    (docs/standards.md §5). The request's name and sections wait beside the subscriber until
    its link is used (`confirm`): asking is not consent, and anyone can ask."""
    email = validate_email(raw_email)
    requested_name = clean_name(name)
    chosen = check_sections(sections, policy.sections)
    sub = find_by_email(session, email)
    if sub is not None and sub.status == ACTIVE:
        return _notice(session, sub, ALREADY_SUBSCRIBED, now, keys, policy)
    reason = undeliverable(session, email, keys)
    if reason is not None:
        _refused(sub, reason, evidence, now)
        return None
    previous = None if sub is None else sub.status
    if sub is None:
        # Nothing of anyone's is stored for this address: the request's values are all it has.
        sub = Subscriber(
            public_id=new_public_id(),
            email=email,
            status=PENDING,
            created_at=now,
            name=requested_name,
            sections=chosen,
        )
        session.add(sub)
    _open_request(sub, now, requested_name or sub.name, chosen)
    record(sub, SUBSCRIBE, evidence, now, sections=chosen, previous_status=previous)
    session.flush()
    return _notice(session, sub, CONFIRMATION, now, keys, policy)


class StaffRequest(NamedTuple):
    """What `staff_subscribe` did: nothing, for an address that is already active, or a
    subscribe request whose notice (None when rate limited) the caller sends."""

    already_active: bool
    notice: Notice | None


def staff_subscribe(
    session: Session,
    raw_email: str,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
    name: str | None = None,
    sections: Sequence[str] | None = None,
) -> StaffRequest:
    """A subscribe request made by staff (`digest subscribers add` without --confirmed).

    The public form mails an active address an "already subscribed" note so that its answer
    reveals nothing; staff see the list anyway, so an active address is told to them instead and
    nobody is mailed (nor charged a confirmation of their daily allowance)."""
    existing = find_by_email(session, validate_email(raw_email))
    if existing is not None and existing.status == ACTIVE:
        return StaffRequest(True, None)
    notice = subscribe(
        session, raw_email, evidence=evidence, now=now, keys=keys, policy=policy, name=name,
        sections=sections,
    )  # fmt: skip
    return StaffRequest(False, notice)


def _refused(sub: Subscriber | None, reason: str, evidence: Evidence, now: datetime) -> None:
    """A request for an address that bounced or complained: nothing is sent or changed; the
    attempt is kept in the person's history (or, for an erased person, only logged: their
    address is not stored again)."""
    if sub is not None:
        record(sub, SUBSCRIBE_REFUSED, evidence, now, reason=reason)
    logger.info("subscribe request for a suppressed address (%s) refused: no email sent", reason)


def resubscribe(
    session: Session,
    sub: Subscriber,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
) -> Notice | None:
    """Someone who left asks to come back (from their unsubscribe or preferences page): a new
    double opt-in, exactly as if they had used the form."""
    if sub.status == ACTIVE:
        return None
    reason = undeliverable(session, sub.email, keys)
    if reason is not None:
        _refused(sub, reason, evidence, now)
        return None
    _open_request(sub, now, sub.name, sub.sections)
    record(sub, SUBSCRIBE, evidence, now, sections=sub.sections, previous_status=sub.status)
    return _notice(session, sub, CONFIRMATION, now, keys, policy)


def resend_confirmation(
    session: Session,
    raw_email: str,
    *,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
) -> Notice | None:
    """Another copy of the confirmation link (same limits); nothing for unknown addresses."""
    sub = find_by_email(session, validate_email(raw_email))
    if sub is None:
        return None
    if sub.status == ACTIVE:
        return _notice(session, sub, ALREADY_SUBSCRIBED, now, keys, policy)
    if sub.confirm_nonce is None:
        if sub.status != PENDING:
            return None  # left, bounced or complained, and has not asked to come back
        _open_request(sub, now, sub.name, sub.sections)  # e.g. imported: never had a link
    return _notice(session, sub, CONFIRMATION, now, keys, policy)


def pending_emails(session: Session) -> list[str]:
    """Every address still waiting for its confirmation (e.g. imported as pending), the ones
    `resend_confirmation` can send a first or another link to."""
    return list(session.scalars(select(Subscriber.email).where(Subscriber.status == PENDING)))


def _open_request(
    sub: Subscriber, now: datetime, name: str | None, sections: list[str] | None
) -> None:
    # Every link sent for one request carries the same nonce: any of them confirms, once.
    # A later request (before the link is used) replaces what is asked for; the confirmation
    # page shows it before the button is pressed.
    if sub.confirm_nonce is None:
        sub.confirm_nonce = secrets.token_hex(8)
    sub.requested_name = name
    sub.requested_sections = sections
    sub.requested_at = now
    sub.updated_at = now


def _notice(
    session: Session,
    sub: Subscriber,
    kind: str,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
) -> Notice | None:
    """The email to send, if the address may have one now. Counted per mailbox (plus-tags,
    case and Gmail's dots do not make a new one: subscribers.addresses.canonical_mailbox), so
    that a victim's inbox gets the same few emails however the address is spelt."""
    if undeliverable(session, sub.email, keys) is not None:
        return None
    mailbox = email_hashes(canonical_mailbox(sub.email), keys)
    send_id = ratelimit.take(session, mailbox, kind, now, policy.limits)
    if send_id is None:
        return None
    if kind == CONFIRMATION:
        assert sub.confirm_nonce is not None
        token = make_confirm_token(keys, sub.public_id, sub.confirm_nonce, now)
    else:
        token = make_token(keys, MANAGE, sub.public_id, now)
    return Notice(kind, sub.email, sub.public_id, token, send_id)


# ConfirmResult.state values.
CONFIRMED = "confirmed"
ALREADY_CONFIRMED = "already"
EXPIRED = "expired"
INVALID = "invalid"
READY = "ready"


@dataclass(frozen=True)
class ConfirmResult:
    state: str
    subscriber: Subscriber | None = None


def check_confirmation(
    session: Session, token: str, *, now: datetime, keys: Sequence[str], policy: Policy
) -> ConfirmResult:
    """What a confirmation link would do, without doing it (for the page a GET shows)."""
    try:
        public_id, nonce = read_confirm_token(
            keys, token, now, int(policy.confirm_ttl.total_seconds())
        )
    except TokenExpired:
        return ConfirmResult(EXPIRED)
    except TokenError:
        return ConfirmResult(INVALID)
    sub = find_by_public_id(session, public_id)
    if sub is None:
        return ConfirmResult(INVALID)
    if sub.confirm_nonce is not None and secrets.compare_digest(sub.confirm_nonce, nonce):
        return ConfirmResult(READY, sub)
    if sub.status == ACTIVE:
        return ConfirmResult(ALREADY_CONFIRMED, sub)
    return ConfirmResult(INVALID)  # used, or superseded by unsubscribing


def confirm(
    session: Session,
    token: str,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
    policy: Policy,
) -> ConfirmResult:
    """The second half of double opt-in: the link was valid (72 h) and unused, so the person
    controls the mailbox and asked. Lifts any suppression: this is a fresh, proven consent."""
    result = check_confirmation(session, token, now=now, keys=keys, policy=policy)
    sub = result.subscriber
    if result.state != READY or sub is None:
        return result
    previous = sub.status
    sub.status = ACTIVE
    sub.name = sub.requested_name or sub.name
    sub.sections = sub.requested_sections
    sub.requested_name = sub.requested_sections = None
    sub.confirmed_at = now
    sub.unsubscribed_at = None
    sub.confirm_nonce = None
    sub.updated_at = now
    lift_suppression(session, sub.email, keys)
    record(sub, CONFIRM, evidence, now, sections=sub.sections, previous_status=previous)
    return ConfirmResult(CONFIRMED, sub)


def purge_pending(session: Session, *, now: datetime, policy: Policy) -> int:
    """Delete requests nobody confirmed within `pending_expiry` (with their history: they
    never consented), and rate-limit rows that no longer count."""
    cutoff = now - policy.pending_expiry
    requested = func.coalesce(Subscriber.requested_at, Subscriber.created_at)
    result = session.execute(
        delete(Subscriber)
        .where(Subscriber.status == PENDING, Subscriber.confirmed_at.is_(None))
        .where(requested < cutoff)
        .execution_options(synchronize_session=False)
    )
    ratelimit.purge(session, now)
    return int(getattr(result, "rowcount", 0) or 0)
