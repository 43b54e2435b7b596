"""A subscriber's personal links in an edition: the body's unsubscribe and manage URLs and the
`List-Unsubscribe` headers, with a token for this subscriber alone.

Every message carries `List-Unsubscribe: <https://…>[, <mailto:…>]` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 2369, RFC 8058 §3.1; docs/standards.md
§1). The send (send/compose.py) and preflight (edition/preflight.py) both build recipients here,
so what preflight checks is what a send writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.backends.base import Recipient
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL
from subscribers.tokens import MANAGE, UNSUBSCRIBE, minter

ONE_CLICK = "List-Unsubscribe=One-Click"
# (delivery id, address, variant, public id): a claimed ledger row, or a made-up one.
Row = tuple[int, str, str, str]


def recipients(
    rows: Sequence[Row], base_url: str, keys: Sequence[str], mailto: str | None
) -> list[Recipient]:
    """Each row as a Recipient with its own links, in one loop: a send makes a million of
    these, so the parts every link shares are made once per batch and the tokens come from
    their minters a batch at a time (subscribers.tokens: make_token for these purposes)."""
    unsubscribe, manage = minter(tuple(keys), UNSUBSCRIBE), minter(tuple(keys), MANAGE)
    to_unsubscribe, to_manage = f"{base_url}/u/", f"{base_url}/manage/"
    after = f">, <mailto:{mailto}?subject=unsubscribe>" if mailto else ">"
    public_ids = [r[3] for r in rows]
    unsubscribe_tokens, manage_tokens = unsubscribe.many(public_ids), manage.many(public_ids)
    made = []
    for (delivery_id, email, _, _), token, manage_token in zip(
        rows, unsubscribe_tokens, manage_tokens, strict=True
    ):
        unsubscribe_url = to_unsubscribe + token
        substitutions = {UNSUBSCRIBE_URL: unsubscribe_url, MANAGE_URL: to_manage + manage_token}
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_url}{after}",
            "List-Unsubscribe-Post": ONE_CLICK,
        }
        made.append(Recipient(delivery_id, email, substitutions, headers))
    return made
