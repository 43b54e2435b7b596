"""API tokens: `Authorization: Bearer dgst_...` for scripts and the API docs.

A token is 256 random bits, shown once when it is made; only its SHA-256 is stored (a slow
hash is for guessable secrets; nobody guesses 256 bits, and a lookup by hash costs one index
read per request). A token is revoked, not deleted, so a revoked token's use is told apart
from a forged one in the answer, and its id stays meaningful in `digest staff list`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import NotFoundError, NotSignedIn, UsageError
from digest.staff import accounts
from digest.staff.roles import TOKEN, Principal
from digest.store.models import StaffMember, StaffToken

PREFIX = "dgst_"
MAX_NAME = 100
# last_used_at is written at most this often per token (not a write per request).
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenRow:
    id: int
    email: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, email: str, name: str | None, now: datetime) -> tuple[StaffToken, str]:
    """A new token for the staff member: the row, and the token (shown once, never again)."""
    member = accounts.find(session, email)
    label = (name or "").strip() or f"token of {now:%Y-%m-%d}"
    if len(label) > MAX_NAME:
        raise UsageError(f"--name is {len(label)} characters; at most {MAX_NAME}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = StaffToken(staff_id=member.id, name=label, token_hash=token_hash(token), created_at=now)
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str, now: datetime) -> Principal:
    """The staff member holding `token`, or NotSignedIn saying why not (never echoing it)."""
    found = session.execute(
        select(StaffToken, StaffMember)
        .join(StaffMember, StaffMember.id == StaffToken.staff_id)
        .where(StaffToken.token_hash == token_hash(token))
    ).first()
    if found is None:
        raise NotSignedIn("the API token is not valid (make one with `digest staff token EMAIL`)")
    row, member = found
    if row.revoked_at is not None:
        raise NotSignedIn(f"the API token {row.id} ({row.name}) was revoked")
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return Principal(member.id, member.email, member.role, TOKEN, token_id=row.id)


def revoke(session: Session, token_id: int, now: datetime) -> tuple[StaffToken, bool]:
    """Revoke a token by its id; (the row, whether it was live until now)."""
    row = session.get(StaffToken, token_id)
    if row is None:
        raise NotFoundError(f"no API token with id {token_id} (see `digest staff list`)")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = now
    return row, True


def listing(session: Session) -> list[TokenRow]:
    rows = session.execute(
        select(StaffToken, StaffMember.email)
        .join(StaffMember, StaffMember.id == StaffToken.staff_id)
        .order_by(StaffToken.id)
    )
    return [
        TokenRow(t.id, email, t.name, t.created_at, t.last_used_at, t.revoked_at)
        for t, email in rows
    ]
