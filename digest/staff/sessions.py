"""Console sessions: sign in with email and password, a signed cookie, a CSRF token, sign out.

The cookie holds a random session id signed with DIGEST_SECRET_KEY (salt `digest.staff-session`,
so no subscriber link can pass for one): a forged or altered cookie is refused without a
database read. What makes a genuine cookie valid is its row in `staff_sessions`, found by the
id's SHA-256, so signing out, a new password or removing the person ends it at once, and the
database never holds a usable session id.

Each session has its own CSRF token: a form of the console carries it as `csrf_token`, an
unsafe API request made with the cookie as the `X-CSRF-Token` header (a cross-site page can
send the cookie, never the token). Cookie settings (HttpOnly, SameSite=Lax, Secure under
https) are the web app's: digest/web/staffauth.py.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from digest.errors import NotSignedIn
from digest.staff.roles import SESSION, Principal
from digest.store.models import StaffMember, StaffSession

SALT = "digest.staff-session"
# last_seen_at is written at most this often per session.
TOUCH_EVERY = timedelta(minutes=1)


class Cookies:
    """Signs and reads the session cookie's value. Keys rotate like the link keys: the newest
    signs, every one verifies."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._serializer = URLSafeSerializer(list(reversed(keys)), salt=SALT)

    def dumps(self, session_id: str) -> str:
        return str(self._serializer.dumps(session_id))

    def loads(self, value: str) -> str | None:
        """The session id, or None for a forged or altered value."""
        try:
            session_id = self._serializer.loads(value)
        except BadSignature:
            return None
        return session_id if isinstance(session_id, str) else None


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(session: Session, member: StaffMember, now: datetime, hours: int) -> tuple[str, str]:
    """A new session for a signed-in member: (its id for the cookie, its CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            staff_id=member.id,
            session_hash=_hash(session_id),
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            last_seen_at=now,
        )
    )
    # A sign-in is a good moment to forget this member's expired sessions.
    session.execute(
        delete(StaffSession).where(
            StaffSession.staff_id == member.id, StaffSession.expires_at <= now
        )
    )
    session.flush()
    return session_id, csrf


def resume(session: Session, session_id: str, now: datetime) -> Principal:
    """The member a session id belongs to, or NotSignedIn (expired, signed out, removed)."""
    found = session.execute(
        select(StaffSession, StaffMember)
        .join(StaffMember, StaffMember.id == StaffSession.staff_id)
        .where(StaffSession.session_hash == _hash(session_id))
    ).first()
    if found is None:
        raise NotSignedIn("the session ended (signed out, or the password changed): sign in again")
    row, member = found
    if row.expires_at <= now:
        session.delete(row)
        raise NotSignedIn("the session expired: sign in again")
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Principal(member.id, member.email, member.role, SESSION, csrf_token=row.csrf_token)


def end(session: Session, session_id: str) -> bool:
    """Sign out: the session's row goes. Whether there was one."""
    result = session.execute(
        delete(StaffSession).where(StaffSession.session_hash == _hash(session_id))
    )
    return bool(getattr(result, "rowcount", 0))


def csrf_matches(principal: Principal, submitted: str | None) -> bool:
    expected = principal.csrf_token
    return bool(expected and submitted) and secrets.compare_digest(expected or "", submitted or "")
