"""A subscriber's personal links in an edition: the body's unsubscribe and manage URLs and the
`List-Unsubscribe` headers, with a token for this subscriber alone.

Every message carries `List-Unsubscribe: <https://…>[, <mailto:…>]` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 2369, RFC 8058 §3.1; docs/standards.md
§1). The send (send/compose.py) and preflight (edition/preflight.py) both build recipients here,
so what preflight checks is what a send writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.backends.base import Patterns, RecipientTable
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL
from subscribers.tokens import link_signatures

ONE_CLICK = "List-Unsubscribe=One-Click"
# (delivery id, address, variant, public id): a claimed ledger row, or a made-up one.
Row = tuple[int, str, str, str]


def recipients(
    rows: Sequence[Row], base_url: str, keys: Sequence[str], mailto: str | None
) -> RecipientTable:
    """Each row as a recipient with its own links."""
    return table(
        [r[0] for r in rows], [r[1] for r in rows], [r[3] for r in rows], base_url, keys, mailto
    )


def table(
    ids: Sequence[int],
    emails: Sequence[str],
    public_ids: Sequence[str],
    base_url: str,
    keys: Sequence[str],
    mailto: str | None,
) -> RecipientTable:
    """The recipients of a batch with their links, as columns: a send makes a million of these,
    so a recipient's own strings are its public id and its two signatures (a token is
    `public_id.signature`, subscribers.tokens), both from one hash, a batch at a time, and the
    URLs and headers every recipient has are patterns written once per batch."""
    unsubscribe, manage = link_signatures(keys, [p.encode() for p in public_ids])
    own = list(zip(public_ids, unsubscribe, manage, strict=True))
    return RecipientTable(ids, emails, own, patterns(base_url, mailto))


def patterns(base_url: str, mailto: str | None) -> Patterns:
    """The links every recipient has, over its own strings (public id, unsubscribe signature,
    manage signature)."""
    unsubscribe_url = (f"{base_url}/u/", 0, ".", 1)
    after = f">, <mailto:{mailto}?subject=unsubscribe>" if mailto else ">"
    return Patterns(
        substitutions={
            UNSUBSCRIBE_URL: unsubscribe_url,
            MANAGE_URL: (f"{base_url}/manage/", 0, ".", 2),
        },
        headers={
            "List-Unsubscribe": ("<", *unsubscribe_url, after),
            "List-Unsubscribe-Post": (ONE_CLICK,),
        },
    )
