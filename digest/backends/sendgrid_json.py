"""The /v3/mail/send request body as JSON text, and the way it is handed to the `sendgrid` library.

A batch's body is 1000 personalizations that differ only in a few strings (the address, two
links, the List-Unsubscribe header, the delivery id). Building a dict per recipient and letting
`json.dumps` walk them costs ~7 ms per request; here the message-level members are serialised
once per variant, and each personalization is one %-format of a template: for a RecipientTable
(what a send composes) the template is written from its patterns, with a hole for each string a
recipient has of its own (its address, its tokens, its delivery id), so no URL is even joined
per recipient; for a list of Recipients it is made from the first one, and a recipient whose
substitutions or headers have other keys is serialised on its own. The strings go in as they
are when none of the batch's needs escaping (checked once for the whole batch), else escaped by
the C function json.dumps itself uses. The text parses to exactly `SendGridBackend.payload(batch)`
(a property test holds it to that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any, cast

from digest.backends.base import Batch, Pattern, Recipient, RecipientTable

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
    head = _head(message)
    # One join writes the whole text (600 KB for 1000 recipients): the head and the closing
    # brackets ride on the first and last personalization instead of copying it all again.
    people = _personalizations(batch) or [""]
    people[0] = f'{head[:-1]},"personalizations":[{people[0]}'
    people[-1] += "]}"
    return ",".join(people)


# The message part of the last bodies written: every batch of a variant has the same one (the
# same body, subject and sender), and the HTML is tens of kilobytes to escape.
_HEADS: dict[object, str] = {}
_HEADS_KEPT = 64


def _head(message: Mapping[str, Any]) -> str:
    key = _frozen(message)  # the strings hash once each (Python keeps a str's hash)
    head = _HEADS.get(key)
    if head is None:
        head = json.dumps(message, separators=_SEPARATORS)
        assert head.endswith("}") and len(head) > 2, "a message has from, subject and content"
        if len(_HEADS) >= _HEADS_KEPT:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def _frozen(value: Any) -> object:
    """`value` (JSON: dicts, lists, strings, numbers) as something hashable."""
    if isinstance(value, Mapping):
        return tuple((key, _frozen(item)) for key, item in value.items())
    if isinstance(value, list):
        return ("[", *(_frozen(item) for item in value))
    return value


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
    if isinstance(recipients, RecipientTable):
        return _from_table(recipients, edition, batch.test)
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


def _from_table(table: RecipientTable, edition: str, test: bool) -> list[str]:
    """Each personalization as one %-format of a template written from the table's patterns:
    the literal parts escaped once, a hole inside a JSON string for each string a recipient
    has of its own (its address, its tokens) and one for its delivery id. The strings go in as
    they are when none of the batch's needs escaping (checked once for the whole batch, on the
    columns), else escaped."""
    subs, heads = table.patterns.substitutions, table.patterns.headers
    holes: list[int] = []
    pick = _picker(holes, subs, heads)
    template = (
        f'{{"to":[{{"email":"%s"}}],"substitutions":{{{_members(subs)}}},'
        f'"headers":{{{_members(heads)}}},'
        f'"custom_args":{{"edition":{_constant(edition)},"delivery":"%s"}}}}'
    )
    columns = [tuple(table.emails), tuple(chain.from_iterable(table.own))]
    if test:
        deliveries: Sequence[object] = ["test"] * len(table)
    else:
        deliveries = table.ids  # integers: %s writes them as they are
    if _need_no_escaping(columns):
        return _writer(template, tuple(holes))(table.emails, table.own, deliveries)
    return [
        template % tuple(_quote(str(v))[1:-1] for v in (email, *pick(own), delivery))
        for email, own, delivery in zip(table.emails, table.own, deliveries, strict=True)
    ]


_Writer = Callable[[Sequence[str], Sequence[Sequence[str]], Sequence[object]], list[str]]
_HOLE_OR_PERCENT = re.compile(r"%[%s]")


@lru_cache(maxsize=32)
def _writer(template: str, holes: tuple[int, ...]) -> _Writer:
    """`[template % (email, *own[holes], delivery) for each recipient]` as one list
    comprehension of an f-string, which Python assembles in a third of the time a %-format
    takes to parse its template again for every recipient. The function is compiled from
    identifiers only: the template's literal parts are handed to it as values (c0, c1, ...),
    never written into its source."""
    parts: list[str] = [""]
    fields: list[str] = []
    names = ["e", *(f"o[{i}]" for i in holes), "d"]
    last = 0
    for match in _HOLE_OR_PERCENT.finditer(template):
        parts[-1] += template[last : match.start()]
        if match[0] == "%%":
            parts[-1] += "%"
        else:
            fields.append(names[len(fields)])
            parts.append("")
        last = match.end()
    parts[-1] += template[last:]
    assert len(fields) == len(names), "one hole per string of the recipient's"
    pieces = "".join(f"{{c{i}}}{{{field}}}" for i, field in enumerate(fields))
    source = (
        "lambda emails, own, deliveries: "
        f"[f'{pieces}{{c{len(fields)}}}' for e, o, d in zip(emails, own, deliveries, strict=True)]"
    )
    constants = {f"c{i}": part for i, part in enumerate(parts)}
    return cast(_Writer, eval(source, {"__builtins__": {"zip": zip}, **constants}))


def _picker(holes: list[int], *groups: Mapping[str, Pattern]) -> Callable[[Any], tuple[str, ...]]:
    """A function from a recipient's own strings to those the patterns of `groups` use, in
    their order (`holes` receives their indexes)."""
    for patterns in groups:
        holes += [p for pattern in patterns.values() for p in pattern if isinstance(p, int)]
    if not holes:
        return lambda own: ()
    if len(holes) == 1:
        index = holes[0]
        return lambda own: (own[index],)
    return cast(Callable[[Any], tuple[str, ...]], itemgetter(*holes))


def _members(patterns: Mapping[str, Pattern]) -> str:
    """`"key":"value"` for each pattern: its literal parts escaped (and % doubled), a %s
    wherever a recipient's own string goes."""
    return ",".join(
        f'{_constant(key)}:"'
        + "".join("%s" if isinstance(part, int) else _constant(part)[1:-1] for part in pattern)
        + '"'
        for key, pattern in patterns.items()
    )


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


class JsonText:
    """A request body that is JSON text already, for python_http_client (see CONTENT_TYPE),
    encoded once, when made.

    The client sends `request_body.encode("utf-8")`. It also formats the encoded body into a
    debug message on every request, whether debug logging is on or not (`'PAYLOAD:
    {data}'.format(data=request.data)`): the repr of 600 KB of bytes, ~2.5 ms per request, and
    every recipient's address in the log line when it is on. The bytes handed over format as
    their size instead; they are the same bytes, sent as they are.
    """

    __slots__ = ("_data",)

    def __init__(self, text: str) -> None:
        self._data = _Encoded(text, "utf-8")

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if encoding.lower().replace("-", "") != "utf8":
            raise ValueError(f"a JSON body is UTF-8, not {encoding}")
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return self._data.decode("utf-8")


class _Encoded(bytes):
    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return f"<{len(self)} bytes of JSON>"
