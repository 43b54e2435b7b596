"""Unsubscribe from everything by public id, in three SQL statements: the RFC 8058 hot path.

A mailbox provider may POST one-click unsubscribes as fast as people press the button in its
interface, and the endpoint must answer quickly (goal: 1,000/s, p99 <= 50 ms on SQLite). Loading
the subscriber into the ORM and flushing it costs ~2.5 ms a request; these statements cost a
fraction. They make exactly the change `suppress_with_evidence(..., "unsubscribed")` makes (a
test holds the two to the same rows):

1. UPDATE the subscriber to unsubscribed, unless already so, RETURNING id and email;
2. if a row came back, INSERT the consent event (the withdrawal, with IP and user agent);
3. and INSERT the keyed hash into the suppression list unless an entry (under any key) exists.

A repeat, or a token whose subscriber was erased, runs statement 1 and changes nothing.

`unsubscribe_public_ids` does a burst of requests in one transaction (the web app's group
commit): statement 1 per request, then one executemany each for 2 and 3.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import (
    BindParameter,
    Connection,
    Table,
    bindparam,
    exists,
    insert,
    select,
    update,
)

from subscribers.consent import Evidence
from subscribers.fastsql import Prepared
from subscribers.models import UNSUBSCRIBED, Consent, Subscriber, Suppression, UTCDateTime
from subscribers.suppression import email_hashes
from subscribers.tokens import MAX_TOKEN_LENGTH, UNSUBSCRIBE, TokenError, mints

_REASON = "unsubscribed"


class UnsubscribeTokens:
    """`read_token(keys, UNSUBSCRIBE, token, now)` for the hot path, without its shape checks.

    An unsubscribe token is `public_id.signature`, and we write exactly one spelling of each
    signature, so a token is genuine if and only if it is, character for character, the
    token one of the keys mints for its payload (compared in constant time), today's way or,
    for links in old emails, the legacy way (subscribers/tokens.py; the minting functions keep
    their keys' prepared states). A property test holds the two readers to the same answers."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(keys)

    def read(self, token: str) -> str:
        """The public id inside a genuine token; TokenError otherwise."""
        if len(token) <= MAX_TOKEN_LENGTH and token.isascii():
            payload = token.rpartition(".")[0]
            for mint in mints(self._keys, UNSUBSCRIBE, token):
                if payload and hmac.compare_digest(mint(payload), token):
                    return payload
        raise TokenError("invalid link")


def _table(model: type[Subscriber] | type[Consent] | type[Suppression]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_SUBSCRIBERS, _CONSENTS, _SUPPRESSIONS = _table(Subscriber), _table(Consent), _table(Suppression)
_NOW = bindparam("now", type_=UTCDateTime())
_CONSENT_KEYS = [
    "subscriber_id",
    "event",
    "at",
    "source",
    "ip",
    "user_agent",
    "consent_text_version",
    "detail",
]

# Compiled once per dialect (subscribers/fastsql.py): building and binding a statement through
# SQLAlchemy costs more than SQLite takes to run it.
_LEAVE = Prepared(
    update(_SUBSCRIBERS)
    .where(_SUBSCRIBERS.c.public_id == bindparam("who"))
    .where(_SUBSCRIBERS.c.status != UNSUBSCRIBED)
    .values(status=UNSUBSCRIBED, updated_at=_NOW, unsubscribed_at=_NOW, confirm_nonce=None)
    .returning(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.email),
    ["who", "now"],
)
_RECORD = Prepared(insert(_CONSENTS), _CONSENT_KEYS)


@cache
def _suppress(key_count: int) -> Prepared:
    """Insert the newest key's hash unless the address is listed under any key."""
    hashes: list[BindParameter[str]] = [bindparam(f"h{i}") for i in range(key_count)]
    return Prepared(
        insert(_SUPPRESSIONS).from_select(
            ["email_hash", "reason", "created_at"],
            select(bindparam("email_hash"), bindparam("reason"), _NOW).where(
                ~exists().where(_SUPPRESSIONS.c.email_hash.in_(hashes))
            ),
        ),
        ["email_hash", "reason", "now", *(h.key for h in hashes)],
    )


def unsubscribe_public_id(
    connection: Connection,
    public_id: str,
    *,
    evidence: Evidence,
    now: datetime,
    keys: Sequence[str],
) -> bool:
    """True if someone was unsubscribed; False for a repeat or an unknown id. The caller owns
    the transaction."""
    return unsubscribe_public_ids(connection, [(public_id, evidence)], now=now, keys=keys)[0]


def unsubscribe_public_ids(
    connection: Connection,
    requests: Sequence[tuple[str, Evidence]],
    *,
    now: datetime,
    keys: Sequence[str],
) -> list[bool]:
    """Several one-click requests in the caller's transaction (the web app commits a burst of
    them together): for each, what `unsubscribe_public_id` would have answered had they run
    one after another in this order. So a public id twice unsubscribes once, the first time,
    with the first request's evidence.

    Statement 1 runs once per request; the consent events and suppression entries of those
    who left go in one executemany each. Values shared by every row (now, the detail) are
    bound once."""
    if not requests:
        return []
    stamp = _LEAVE.processors(connection)["now"](now)
    left = _LEAVE.first_each(connection, [(public_id, stamp) for public_id, _ in requests])
    events = []
    entries = []
    detail = _RECORD.processors(connection)["detail"]({"reason": _REASON})
    suppress = _suppress(len(keys))
    for row, (_, evidence) in zip(left, requests, strict=True):
        if row is None:
            continue
        subscriber_id, address = row[:2]
        events.append(
            (
                subscriber_id,
                "unsubscribe",
                stamp,
                evidence.source[:500],
                evidence.ip[:64] if evidence.ip else None,
                evidence.user_agent[:500] if evidence.user_agent else None,
                evidence.consent_text_version,
                detail,
            )
        )
        hashes = email_hashes(address, keys)
        entries.append((hashes[0], _REASON, stamp, *hashes))
    _RECORD.executemany_bound(connection, events)
    suppress.executemany_bound(connection, entries)
    return [row is not None for row in left]
