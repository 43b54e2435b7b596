"""Signed, purpose-bound tokens for subscriber links.

The payload is the subscriber's opaque `public_id`, never the email address (a signed token is
readable by anyone: it ends up in URLs, logs and click-tracking redirects). Each purpose has its
own salt, so an unsubscribe token cannot confirm and a confirm token cannot manage. Keys rotate:
the newest key signs, every listed key verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "confirm"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
PURPOSES = (CONFIRM, MANAGE, UNSUBSCRIBE)


class TokenError(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


class _Serializer(URLSafeTimedSerializer):
    """Takes `now` from the caller so that expiry is testable without sleeping."""

    def __init__(self, keys: Sequence[str], salt: str, now: datetime) -> None:
        # itsdangerous wants keys oldest first; ours are newest first.
        super().__init__(list(reversed(keys)), salt=f"digest.{salt}")
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now.timestamp())


def _serializer(keys: Sequence[str], purpose: str, now: datetime) -> _Serializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if not keys:
        raise ValueError("no signing key")
    return _Serializer(keys, purpose, now)


def make_token(keys: Sequence[str], purpose: str, public_id: str, now: datetime) -> str:
    return _serializer(keys, purpose, now).dumps(public_id)


def read_token(
    keys: Sequence[str], purpose: str, token: str, now: datetime, max_age_s: int | None = None
) -> str:
    """The public_id inside a valid token; TokenError otherwise."""
    serializer = _serializer(keys, purpose, now)
    try:
        value, signed_at = serializer.loads(token, max_age=None, return_timestamp=True)
    except SignatureExpired:
        raise TokenError("link expired") from None
    except BadSignature:
        raise TokenError("invalid link") from None
    age = now.timestamp() - signed_at.timestamp()
    if max_age_s is not None and age > max_age_s:
        raise TokenError("link expired")
    if not isinstance(value, str):
        raise TokenError("invalid link")
    return value
