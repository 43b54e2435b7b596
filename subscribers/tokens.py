"""Signed, purpose-bound tokens for subscriber links.

The payload is the subscriber's opaque `public_id`, never the email address (a signed token is
readable by anyone: it ends up in URLs, logs and click-tracking redirects; docs/standards.md §5).
Each purpose has its own signature, so an unsubscribe token cannot confirm and a confirm token
cannot manage. Keys rotate: the newest key signs, every listed key verifies.

Unsubscribe and manage tokens never expire (old emails sit in inboxes for years and CAN-SPAM
wants opt-out links to work for at least 30 days): `public_id.signature`, the signature 32
base64url characters. A send writes both for every recipient, a million of each, so both come
from one keyed BLAKE2b of the public id (a MAC by design: RFC 7693 §2.5) with a 48-byte output:
its first 24 bytes sign the unsubscribe link, its last 24 the manage link. The halves of a
pseudo-random function's output are independent, so either reveals nothing of the other (the
unsubscribe link travels in a header that mailbox providers read; the manage link shows the
address). The BLAKE2b key is HMAC-SHA256(secret, "digest.links"). One call per recipient costs
a quarter of the two HMAC-SHA256 signatures it replaces (bench/web.py).

Tokens written before (itsdangerous `Signer`: HMAC-SHA256, key derived per purpose with the
salt "digest.<purpose>", a 43-character signature) are still read, told apart by their
length: those links sit in old emails too.

Confirm tokens expire (72 h by default) and are single-use: they are `TimestampSigner` tokens
whose payload is `public_id-nonce`; the nonce lives on the subscriber row until it is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache

from itsdangerous import BadSignature, TimestampSigner

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


# The two link purposes, in the order of their halves of the keyed hash.
LINK_PURPOSES = (UNSUBSCRIBE, MANAGE)
_HALF = 24  # bytes of a link signature: 32 base64url characters, no padding
_LINK_SALT = b"digest.links"
# A link token's signature as written before (itsdangerous, HMAC-SHA256): still read.
_LEGACY_LENGTH = 43


class LinkSigner:
    """Both link signatures of a payload from one keyed BLAKE2b (see the module docstring),
    the key's state prepared once."""

    def __init__(self, key: str) -> None:
        derived = hmac.digest(key.encode(), _LINK_SALT, "sha256")
        self._state = hashlib.blake2b(key=derived, digest_size=2 * _HALF)

    def pairs(self, payloads: Sequence[bytes]) -> tuple[list[str], list[str]]:
        """(unsubscribe signatures, manage signatures) of each payload, in one loop and one
        base64 pass: 48 bytes are 64 base64 characters, so each payload's two signatures are
        the two halves of its own 64-character slice."""
        fresh = self._state.copy
        digests: list[bytes] = []
        append = digests.append
        for payload in payloads:
            state = fresh()
            state.update(payload)
            append(state.digest())
        text = base64.urlsafe_b64encode(b"".join(digests)).decode()
        width = 4 * _HALF // 3
        starts = range(0, len(text), 2 * width)
        return [text[i : i + width] for i in starts], [
            text[i + width : i + 2 * width] for i in starts
        ]

    def sign(self, payload: str, purpose: str) -> str:
        """The signature part of `payload`'s token for `purpose` (what follows `payload.`)."""
        return _half(self._state, payload, LINK_PURPOSES.index(purpose))


def _half(state: hashlib._Hash, payload: str, half: int) -> str:
    """One link signature: its half of the keyed hash, in base64url (24 bytes: no padding)."""
    fresh = state.copy()
    fresh.update(payload.encode())
    digest = fresh.digest()
    part = digest[:_HALF] if half == 0 else digest[_HALF:]
    return binascii.b2a_base64(part, newline=False).translate(_URL_SAFE).decode()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


class _Minter:
    """Tokens of one link purpose under one key (the newest signs)."""

    def __init__(self, signer: LinkSigner, purpose: str) -> None:
        self._signer = signer
        self._half = LINK_PURPOSES.index(purpose)

    def __call__(self, payload: str) -> str:
        return f"{payload}.{_half(self._signer._state, payload, self._half)}"

    def many(self, payloads: Sequence[str]) -> list[str]:
        """`self(p)` for every payload, in one pass."""
        signed = self.signatures([p.encode() for p in payloads])
        return [f"{p}.{signature}" for p, signature in zip(payloads, signed, strict=True)]

    def signatures(self, payloads: Sequence[bytes]) -> list[str]:
        return self._signer.pairs(payloads)[self._half]


@lru_cache(maxsize=64)
def link_signer(key: str) -> LinkSigner:
    return LinkSigner(key)


def link_signatures(keys: Sequence[str], payloads: Sequence[bytes]) -> tuple[list[str], list[str]]:
    """(unsubscribe, manage) signatures of each payload under the newest key: what a send
    writes into every recipient's links."""
    if not keys:
        raise ValueError("no signing key")
    return link_signer(keys[0]).pairs(payloads)


@lru_cache(maxsize=64)
def minter(keys: tuple[str, ...], purpose: str) -> _Minter:
    """The signing function for a non-expiring purpose (newest key first); its `many` signs a
    list of payloads at once."""
    if purpose == CONFIRM:
        raise ValueError("confirm tokens expire: use make_confirm_token")
    if purpose not in LINK_PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if not keys:
        raise ValueError("no signing key")
    return _Minter(link_signer(keys[0]), purpose)


class _LegacyMinter:
    """The link tokens written before (itsdangerous's, HMAC-SHA256 with the key's inner and
    outer pad states hashed once, RFC 2104), for reading them fast on the one-click path."""

    _TABLE = bytes.maketrans(b"+/", b"-_")

    def __init__(self, key: str, purpose: str) -> None:
        block = _derived_key(key, purpose).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, payload: str) -> str:
        inner = self._inner.copy()
        inner.update(payload.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        # base64url without padding, as itsdangerous writes it: 32 bytes -> 43 characters.
        signature = binascii.b2a_base64(outer.digest(), newline=False)[:_LEGACY_LENGTH]
        return f"{payload}.{signature.translate(self._TABLE).decode()}"


@lru_cache(maxsize=64)
def legacy_minter(key: str, purpose: str) -> _LegacyMinter:
    return _LegacyMinter(key, purpose)


def mints(keys: Sequence[str], purpose: str, token: str) -> list[Callable[[str], str]]:
    """The functions that could have minted `token` for a link purpose, one per key (newest
    first): told apart by the signature's length, today's or the legacy one's."""
    signature = token.rpartition(".")[2]
    if len(signature) == _LEGACY_LENGTH:
        return [legacy_minter(key, purpose) for key in keys]
    return [minter((key,), purpose) for key in keys]


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
        if purpose not in LINK_PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        payload = token.rpartition(".")[0]
        for mint in mints(keys, purpose, token):
            if payload and hmac.compare_digest(mint(payload), token):
                return payload
        raise TokenError("invalid link")
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
