"""Signing in to the console: the password check between two rate limits.

Failures are counted per account and per client IP in the database (`[staff] login_failures`
per `login_window_minutes`, shared by every web process). Once either is spent, sign-in is
refused before the password is even checked, so a guesser cannot tell a right password from a
wrong one while locked out; the account's count is cleared by a successful sign-in, the IP's is
not (one IP trying many accounts stays slowed down).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digest.config import StaffSettings
from digest.staff import accounts, sessions
from digest.store.ratelimit import Limit, Limiter

Write = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class SignIn:
    """The outcome: a session (its id for the cookie, its CSRF token), or why not."""

    session_id: str | None = None
    csrf_token: str | None = None
    email: str | None = None
    wait_s: float = 0.0  # locked out: seconds until a try is allowed

    @property
    def ok(self) -> bool:
        return self.session_id is not None


def limits(settings: StaffSettings) -> tuple[Limit, Limit]:
    window = timedelta(minutes=settings.login_window_minutes)
    return (
        Limit("login-account", settings.login_failures, window),
        Limit("login-ip", settings.login_failures, window),
    )


def sign_in(
    write: Write,
    limiter: Limiter,
    settings: StaffSettings,
    email: str,
    password: str,
    ip: str,
    now: datetime,
) -> SignIn:
    account, per_ip = limits(settings)
    who = email.strip().lower()
    wait = max(limiter.peek(account, who, now), limiter.peek(per_ip, ip, now))
    if wait:
        return SignIn(wait_s=wait)
    with write() as session:
        member = accounts.authenticate(session, email, password, now)
        if member is not None:
            session_id, csrf = sessions.start(session, member, now, settings.session_hours)
            address = member.email
    if member is None:
        limiter.hit(account, who, now)
        limiter.hit(per_ip, ip, now)
        return SignIn()
    limiter.clear(account, who)
    return SignIn(session_id=session_id, csrf_token=csrf, email=address)


def sign_out(write: Write, session_id: str) -> bool:
    with write() as session:
        return sessions.end(session, session_id)
