"""The /v3/mail/send request body as JSON text, and the way it is handed to the `sendgrid` library.

A batch's body is 1000 personalizations that differ only in a few strings (the address, two
links, the List-Unsubscribe header, the delivery id). Building a dict per recipient and letting
`json.dumps` walk them costs ~7 ms per request; here the message-level members are serialised
once, and each personalization is one %-format of a template made from the batch's first
recipient, its strings put in as they are when none of the batch's needs escaping (checked once
for the whole batch), else escaped by the C function json.dumps itself uses. A recipient whose
substitutions or headers have other keys is serialised on its own. The text parses to
exactly `SendGridBackend.payload(batch)` (a property test holds it to that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import chain
from json.encoder import encode_basestring_ascii
from typing import Any, cast

from digest.backends.base import Batch, Recipient

# json.dumps' own string escaping (ASCII output, \uXXXX for the rest), the C version.
_quote = cast(Any, encode_basestring_ascii)
# Compact: the separators json.dumps would put in are only bytes on the wire.
_SEPARATORS = (",", ":")

# python_http_client's Client sends a `str` request body as it is (encoded to UTF-8) when the
# Content-Type is not exactly "application/json"; otherwise it json.dumps the body, which would
# make a JSON string of our JSON text. RFC 8259 §11: a charset parameter on application/json
# "really has no effect on compliant recipients"; SendGrid's own C# library sent this very
# value to /v3/mail/send for years (sendgrid-csharp #910 and PR #967 stopped it only for the
# Contacts API, which refused it). The fake SendGrid accepts application/json with parameters
# and refuses other types with 415, as SendGrid does.
CONTENT_TYPE = "application/json; charset=utf-8"


def body_text(batch: Batch, message: Mapping[str, Any]) -> str:
    """The request body: `message` (every member but the personalizations) and one
    personalization per recipient."""
    head = json.dumps(message, separators=_SEPARATORS)
    assert head.endswith("}") and len(head) > 2, "a message has from, subject and content"
    people = ",".join(_personalizations(batch))
    return f'{head[:-1]},"personalizations":[{people}]}}'


def personalization(recipient: Recipient, edition: str, delivery: str) -> dict[str, Any]:
    """One recipient's personalization, as a dict (SendGridBackend.payload)."""
    return {
        "to": [{"email": recipient.email}],
        "substitutions": dict(recipient.substitutions),
        "headers": dict(recipient.headers),
        "custom_args": {"edition": edition, "delivery": delivery},
    }


def _personalizations(batch: Batch) -> list[str]:
    recipients = batch.recipients
    if not recipients:
        return []
    edition = str(batch.edition_id)
    keys = tuple(recipients[0].substitutions), tuple(recipients[0].headers)
    # Each recipient's own strings, in the template's order (empty: keys of its own).
    strings: list[tuple[str, ...]] = []
    for r in recipients:
        subs, heads = r.substitutions, r.headers
        same = (tuple(subs), tuple(heads)) == keys
        delivery = "test" if batch.test else str(r.delivery_id)
        strings.append((r.email, *subs.values(), *heads.values(), delivery) if same else ())
    if _need_no_escaping(strings):  # the common case, checked once for the whole batch
        plain = _template(*keys, edition, hole='"%s"')
        filled = [plain % values if values else "" for values in strings]
    else:
        escaped = _template(*keys, edition, hole="%s")
        filled = [escaped % tuple(map(_quote, values)) if values else "" for values in strings]
    for index, values in enumerate(strings):
        if not values:  # keys of its own: no template for it
            r = recipients[index]
            delivery = "test" if batch.test else str(r.delivery_id)
            filled[index] = json.dumps(
                personalization(r, edition, delivery), separators=_SEPARATORS
            )
    return filled


def _need_no_escaping(strings: list[tuple[str, ...]]) -> bool:
    """No string has a character json.dumps escapes (anything outside printable ASCII, a
    quote, a backslash: json.encoder.ESCAPE_ASCII): one pass in C over the whole batch's
    strings, deleting every character that needs nothing and seeing whether any is left."""
    joined = "".join(chain.from_iterable(strings))
    return joined.isascii() and not joined.encode("ascii").translate(None, _AS_THEY_ARE)


# The characters json.dumps writes as they are: printable ASCII but the quote and the backslash.
_AS_THEY_ARE = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def _template(subs: Sequence[str], heads: Sequence[str], edition: str, hole: str) -> str:
    """A personalization with a `hole` for each string of its own: the address, the values of
    `subs` and `heads` (in that order), the delivery id."""

    def members(keys: Sequence[str]) -> str:
        return ",".join(f"{_constant(k)}:{hole}" for k in keys)

    return (
        f'{{"to":[{{"email":{hole}}}],"substitutions":{{{members(subs)}}},'
        f'"headers":{{{members(heads)}}},'
        f'"custom_args":{{"edition":{_constant(edition)},"delivery":{hole}}}}}'
    )


def _constant(text: str) -> str:
    """A JSON string for the template: escaped, with % doubled for the %-format."""
    return str(_quote(text)).replace("%", "%%")


class JsonText(str):
    """A request body that is JSON text already, for python_http_client (see CONTENT_TYPE).

    The client also formats the encoded body into a debug message on every request, whether
    debug logging is on or not (`'PAYLOAD: {data}'.format(data=request.data)`): the repr of
    600 KB of bytes, ~2.5 ms per request, and every recipient's address in the log line when
    it is on. `encode` hands it bytes that format as their size instead; they are the same
    bytes, sent as they are.
    """

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _Encoded(str.encode(self, encoding, errors))


class _Encoded(bytes):
    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return f"<{len(self)} bytes of JSON>"
