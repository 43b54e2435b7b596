"""Staff accounts: add, list, remove, change a password, and sign in.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile: 64 MiB, 3 passes), never stored or logged. Signing in with an unknown address costs the
same hash as with a known one, so the answer's timing does not tell who is staff. A hash made
with older parameters is upgraded at the next successful sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.errors import NotFoundError, UsageError
from digest.store.models import STAFF_ROLES, StaffMember, StaffSession, StaffToken
from subscribers.addresses import validate_email
from subscribers.errors import InvalidEmail

# NIST SP 800-63B asks for at least 8 characters; a newsletter's publishing rights deserve more.
# The upper bound keeps one sign-in from hashing a megabyte.
MIN_PASSWORD = 12
MAX_PASSWORD = 1024

# Tests swap in argon2's cheapest profile (tests/conftest.py); production uses the default.
HASHER = PasswordHasher()


@dataclass(frozen=True)
class StaffRow:
    id: int
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    tokens: int  # live (not revoked) API tokens


def staff_email(raw: str) -> str:
    """The address as stored (trimmed, lower case), or UsageError saying what is wrong."""
    try:
        return validate_email(raw)
    except InvalidEmail as exc:
        raise UsageError(f"{raw.strip()!r} is not an email address: {exc}") from None


def check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise UsageError(f"--role {role!r}: choose {' or '.join(STAFF_ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password has {len(password)} characters; at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"the password is longer than {MAX_PASSWORD} characters")
    if password != password.strip():
        raise UsageError("the password starts or ends with white space (a copy-paste slip?)")
    return password


def find(session: Session, email: str) -> StaffMember:
    member = session.scalar(select(StaffMember).where(StaffMember.email == staff_email(email)))
    if member is None:
        raise NotFoundError(f"{email.strip()} is not a staff member (see `digest staff list`)")
    return member


def add(session: Session, email: str, role: str, password: str, now: datetime) -> StaffMember:
    address = staff_email(email)
    check_role(role)
    check_password(password)
    if session.scalar(select(StaffMember.id).where(StaffMember.email == address)) is not None:
        raise UsageError(
            f"{address} is already a staff member: `digest staff password {address}` sets a new "
            "password; `digest staff remove` it first to change the role"
        )
    member = StaffMember(
        email=address,
        role=role,
        password_hash=HASHER.hash(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(member)
    session.flush()
    return member


def listing(session: Session) -> list[StaffRow]:
    live = (
        select(StaffToken.staff_id, func.count().label("n"))
        .where(StaffToken.revoked_at.is_(None))
        .group_by(StaffToken.staff_id)
        .subquery()
    )
    rows = session.execute(
        select(StaffMember, func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.staff_id == StaffMember.id)
        .order_by(StaffMember.email)
    )
    return [StaffRow(m.id, m.email, m.role, m.created_at, m.last_login_at, int(n)) for m, n in rows]


def remove(session: Session, email: str) -> StaffMember:
    """Delete the account with its tokens and sessions (their access ends at once). The
    editions' histories keep the address as the name of what was done."""
    member = find(session, email)
    session.execute(delete(StaffToken).where(StaffToken.staff_id == member.id))
    session.execute(delete(StaffSession).where(StaffSession.staff_id == member.id))
    session.delete(member)
    session.flush()
    return member


def set_password(session: Session, email: str, password: str, now: datetime) -> StaffMember:
    """A new password; every console session of the account ends (tokens stay)."""
    member = find(session, email)
    check_password(password)
    member.password_hash = HASHER.hash(password)
    member.password_changed_at = now
    session.execute(delete(StaffSession).where(StaffSession.staff_id == member.id))
    return member


# Verified against when the address is unknown, so that both answers cost one argon2 hash.
_DUMMY_HASH: list[str] = []


def authenticate(session: Session, email: str, password: str, now: datetime) -> StaffMember | None:
    """The staff member if the password is theirs, else None (whatever was wrong)."""
    try:
        address = staff_email(email)
    except UsageError:
        address = ""
    member = (
        session.scalar(select(StaffMember).where(StaffMember.email == address)) if address else None
    )
    if member is None or len(password) > MAX_PASSWORD:
        _verify(_dummy(), password[:MAX_PASSWORD])
        return None
    if not _verify(member.password_hash, password):
        return None
    if HASHER.check_needs_rehash(member.password_hash):
        member.password_hash = HASHER.hash(password)
    member.last_login_at = now
    return member


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(HASHER.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(HASHER.hash("not a password of anyone's"))
    return _DUMMY_HASH[0]
