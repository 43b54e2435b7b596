"""Signed, purpose-bound tokens for subscriber links.

The payload is the subscriber's opaque `public_id`, never the email address (a signed token is
readable by anyone: it ends up in URLs, logs and click-tracking redirects; docs/standards.md §5).
Each purpose has its own salt, so an unsubscribe token cannot confirm and a confirm token cannot
manage. Keys rotate: the newest key signs, every listed key verifies.

Unsubscribe and manage tokens never expire (old emails sit in inboxes for years and CAN-SPAM
wants opt-out links to work for at least 30 days), so they are plain itsdangerous `Signer`
tokens: `public_id.signature`, HMAC-SHA256 with the key derived per purpose ("hmac" key
derivation, salt "digest.<purpose>"). A send mints two per recipient at tens of thousands of
recipients a second, so minting uses the HMAC's inner and outer states precomputed once per key
and purpose (`minter(...).many` signs a whole batch in one loop); the result is byte-for-byte
the token itsdangerous makes (a test holds it to that), and reading goes through itsdangerous
itself.

Confirm tokens expire (72 h by default) and are single-use: they are `TimestampSigner` tokens
whose payload is `public_id-nonce`; the nonce lives on the subscriber row until it is used.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from itsdangerous import BadSignature, Signer, TimestampSigner

CONFIRM = "confirm"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
PURPOSES = (CONFIRM, MANAGE, UNSUBSCRIBE)
# Tokens are short; anything longer or outside the URL-safe alphabet is rejected unread.
MAX_TOKEN_LENGTH = 200
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.\-]+")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A confirm token signed a little in the future (clocks of two web servers) is still fine.
CLOCK_SKEW_S = 300


class TokenError(Exception):
    """The token is malformed, tampered with, signed by an unknown key, or for another purpose."""


class TokenExpired(TokenError):
    """The token was genuine but is older than its purpose allows."""


def _salt(purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return f"digest.{purpose}".encode()


def _derived_key(key: str, purpose: str) -> bytes:
    """itsdangerous's "hmac" key derivation: HMAC-SHA256(secret, salt)."""
    return hmac.digest(key.encode(), _salt(purpose), "sha256")


class _Minter:
    """HMAC-SHA256 with the key's inner and outer pad states hashed once (RFC 2104)."""

    _TABLE = bytes.maketrans(b"+/", b"-_")

    def __init__(self, derived_key: bytes) -> None:
        block = derived_key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, payload: str) -> str:
        inner = self._inner.copy()
        inner.update(payload.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        # base64url without padding, as itsdangerous writes it: 32 bytes -> 43 characters.
        signature = binascii.b2a_base64(outer.digest(), newline=False)[:43]
        return f"{payload}.{signature.translate(self._TABLE).decode()}"

    def many(self, payloads: Sequence[str]) -> list[str]:
        """`self(p)` for every payload, in one loop and one base64 pass (a send's batch)."""
        signed = self.signatures([p.encode() for p in payloads])
        return [f"{p}.{signature}" for p, signature in zip(payloads, signed, strict=True)]

    def signatures(self, payloads: Sequence[bytes]) -> list[str]:
        """The signature part of each payload's token (what follows `payload.`), in one loop
        and one base64 pass: a send signs a million payloads twice (unsubscribe, manage).

        Each signature gets a zero byte after it: 33 bytes are 11 groups of 3, so in the
        base64 of them all each signature's text is a 44-character slice of its own, whose
        first 43 characters are its unpadded base64 (the zero byte only adds bits that the
        unpadded form fills with zeros too).
        """
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        digests: list[bytes] = []
        append = digests.append
        for payload in payloads:
            inner = inner_copy()
            inner.update(payload)
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest())
        append(b"")  # the zero byte after the last one
        encoded = binascii.b2a_base64(b"\0".join(digests), newline=False)
        text = encoded.translate(self._TABLE).decode()
        return [text[start : start + 43] for start in range(0, 44 * len(payloads), 44)]


@lru_cache(maxsize=64)
def minter(keys: tuple[str, ...], purpose: str) -> _Minter:
    """The fast signing function for a non-expiring purpose (newest key first); its `many`
    signs a list of payloads at once."""
    if purpose == CONFIRM:
        raise ValueError("confirm tokens expire: use make_confirm_token")
    if not keys:
        raise ValueError("no signing key")
    return _Minter(_derived_key(keys[0], purpose))


@lru_cache(maxsize=64)
def _signer(keys: tuple[str, ...], purpose: str) -> Signer:
    if not keys:
        raise ValueError("no signing key")
    # itsdangerous wants keys oldest first; ours are newest first.
    return Signer(
        list(reversed(keys)),
        salt=_salt(purpose),
        key_derivation="hmac",
        digest_method=hashlib.sha256,
    )


def make_token(keys: Sequence[str], purpose: str, public_id: str, now: datetime) -> str:
    """A link token for `public_id`. `now` matters only to confirm tokens (they expire)."""
    if purpose == CONFIRM:
        return _confirm_signer(keys, now).sign(public_id).decode()
    return minter(tuple(keys), purpose)(public_id)


def read_token(
    keys: Sequence[str], purpose: str, token: str, now: datetime, max_age_s: int | None = None
) -> str:
    """The payload inside a genuine token; TokenError (or TokenExpired) otherwise."""
    _check_shape(token, 2 if purpose == CONFIRM else 1)
    if purpose != CONFIRM:
        try:
            return _signer(tuple(keys), purpose).unsign(token).decode()
        except (BadSignature, UnicodeDecodeError):
            raise TokenError("invalid link") from None
    signer = _confirm_signer(keys, now)
    try:
        value, signed_at = signer.unsign(token, return_timestamp=True)
    except (BadSignature, UnicodeDecodeError):
        raise TokenError("invalid link") from None
    age = now.timestamp() - signed_at.timestamp()
    if age < -CLOCK_SKEW_S:
        raise TokenError("invalid link")
    if max_age_s is not None and age > max_age_s:
        raise TokenExpired("link expired")
    return value.decode()


def make_confirm_token(keys: Sequence[str], public_id: str, nonce: str, now: datetime) -> str:
    return make_token(keys, CONFIRM, f"{public_id}-{nonce}", now)


def read_confirm_token(
    keys: Sequence[str], token: str, now: datetime, max_age_s: int
) -> tuple[str, str]:
    """(public_id, nonce) from a genuine, unexpired confirm token."""
    public_id, dash, nonce = read_token(keys, CONFIRM, token, now, max_age_s).partition("-")
    if not dash or not public_id or not nonce:
        raise TokenError("invalid link")
    return public_id, nonce


def _check_shape(token: str, base64_parts: int) -> None:
    """Cheap refusals before any HMAC: too long, foreign characters, or a base64 part (the
    signature; for confirm tokens also the timestamp) not in the one spelling we write. The
    last character of a base64 part can carry unused bits, so several spellings decode to the
    same bytes; accepting only ours gives every link exactly one form."""
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        raise TokenError("invalid link")
    for part in token.split(".")[-base64_parts:]:
        unused = {0: 0, 2: 16, 3: 4}.get(len(part) % 4)
        if unused is None or not part or (unused and _B64.index(part[-1]) % unused):
            raise TokenError("invalid link")


class _FrozenTimestampSigner(TimestampSigner):
    """Takes `now` from the caller so that expiry is testable without sleeping."""

    def __init__(self, keys: Sequence[str], now: datetime) -> None:
        super().__init__(
            list(reversed(keys)),  # itsdangerous wants keys oldest first; ours are newest first
            salt=_salt(CONFIRM),
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now.timestamp())


def _confirm_signer(keys: Sequence[str], now: datetime) -> _FrozenTimestampSigner:
    if not keys:
        raise ValueError("no signing key")
    return _FrozenTimestampSigner(keys, now)
