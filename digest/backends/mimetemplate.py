"""Every message of a batch from one template, for the backends that write MIME themselves (the
outbox, SMTP).

`mime.build_message` builds a message with the email package: ~4 ms for a 50 KB edition (it
parses every header it is given and quoted-printable-encodes the HTML a character at a time, in
Python), about 230 messages a second. The messages of one batch differ in a few places only: the
To and Message-ID headers, the recipient's own headers (List-Unsubscribe) and the values of the
body's placeholders (the unsubscribe and manage URLs). A `MessageTemplate` builds one message
with build_message and keeps it in pieces: what every message shares, as bytes, and holes for
those places. A recipient's message is its pieces joined: the bytes build_message writes for it
(tests/backends/test_mimetemplate.py holds the two together), except the Message-ID's random part
and the MIME boundary, which build_message draws per message and the template once per batch.

A hole in a quoted-printable body: the encoder wraps lines at 76 characters, and where it breaks
depends only on where the line's "=XX" escapes are (mime.wrap_ranges). A URL has no character
the encoder escapes, so when every recipient's value of a placeholder has the same length (the
same base URL and token length: the usual case), the body wraps at the same places for all of
them and each value goes into the same slots, sliced between soft line breaks. A recipient whose
values do not fit (another length, a character that needs escaping), whose address is not one
plain line, or whose headers are not the batch's kind, gets its message from build_message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from email.utils import make_msgid
from typing import NamedTuple

from digest.backends.base import Batch, Recipient, RecipientTable, fill
from digest.backends.mime import (
    _QP_LINE,
    VERBATIM_HEADERS,
    _fold_uris,
    _verbatim,
    build_message,
    qp_quote,
    wrap_ranges,
)

# Printable ASCII but "=" and the space: what quoted-printable writes as it is, anywhere.
_PLAIN = re.compile(r"[!-<>-~]*")
# An address the email package writes as it is, on one line.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+")
_MAX_LINE = 78
_TO = "xqp-to@template.invalid"
_TEXT, _HTML = "XQPTEXTBODYX", "XQPHTMLBODYX"
# A hole: the To line, the Message-ID line, a recipient header's line (its index), or a slice
# of a placeholder's value (its index, start, stop).
_Hole = tuple[str, int, int, int]


class Written(NamedTuple):
    """One recipient's message: its bytes, its Message-ID, and the names of its header fields
    (lower case: what a DKIM signature may cover)."""

    data: bytes
    message_id: str
    names: frozenset[str]


def write(batch: Batch, recipient: Recipient, now: datetime) -> Written:
    """One message with build_message (any batch, any recipient)."""
    message = build_message(batch, recipient, now)
    names = frozenset(k.lower() for k in message)
    return Written(message.as_bytes(), str(message["Message-ID"]), names)


def messages(batch: Batch, now: datetime) -> Iterator[Written]:
    """Every recipient's message, in order: from the batch's template when it has one."""
    template = MessageTemplate.of(batch, now)
    if template is None:
        for recipient in batch.recipients:
            yield write(batch, recipient, now)
        return
    for index in range(len(batch.recipients)):
        yield template.message(index)


class MessageTemplate:
    """The messages of one batch; `message(i)` is recipient i's."""

    def __init__(
        self,
        batch: Batch,
        keys: Sequence[str],
        lengths: Sequence[int],
        format_: bytes,
        holes: list[_Hole],
        now: datetime,
        fields: frozenset[str],
    ) -> None:
        self.batch = batch
        self.keys = keys  # the body's placeholders, in the order of a recipient's values
        self.lengths = lengths  # each value's length, as the template was made for
        self.format = format_  # the message, % for the holes
        self.holes = holes
        self.now = now
        self.domain = batch.from_email.rsplit("@", 1)[-1]
        self.names = list(_recipient_headers(batch))
        self.fields = fields

    @classmethod
    def of(cls, batch: Batch, now: datetime) -> MessageTemplate | None:
        """The template of a batch whose recipients share their placeholders and headers (a
        RecipientTable: a send's batches); None for anything else."""
        recipients = batch.recipients
        if not isinstance(recipients, RecipientTable) or not recipients:
            return None
        patterns = recipients.patterns
        if any(name.lower() not in VERBATIM_HEADERS for name in patterns.headers):
            return None  # only those are written as they are; the others are parsed
        keys = list(patterns.substitutions)
        first = recipients.own[0]
        values = [fill(patterns.substitutions[key], first) for key in keys]
        if _overlap(keys) or not all(_PLAIN.fullmatch(v) for v in values):
            return None
        skeleton = _skeleton(batch, list(patterns.headers), now)
        if skeleton is None:
            return None
        format_, holes, fields = skeleton
        pieces: list[bytes | _Hole] = []
        for piece in _split(format_, holes):
            if isinstance(piece, tuple) and piece[0] in ("text", "html"):
                body = batch.text if piece[0] == "text" else batch.html
                pieces += _body_pieces(body, keys, [len(v) for v in values])
            else:
                pieces.append(piece)
        compiled, final = _compile(pieces)
        return cls(batch, keys, [len(v) for v in values], compiled, final, now, fields)

    def message(self, index: int) -> Written:
        """Recipient `index`'s message, as build_message would write it."""
        recipients = self.batch.recipients
        assert isinstance(recipients, RecipientTable)
        own = recipients.own[index]
        patterns = recipients.patterns
        values = [fill(patterns.substitutions[key], own) for key in self.keys]
        email = recipients.emails[index]
        headers = [fill(patterns.headers[name], own) for name in self.names]
        written = self._fast(recipients.ids[index], email, values, headers)
        if written is not None:
            return written
        return write(self.batch, recipients[index], self.now)

    def _fast(
        self, delivery_id: int, email: str, values: list[str], headers: list[str]
    ) -> Written | None:
        if len(email) > _MAX_LINE - 4 or not _PLAIN_ADDRESS.fullmatch(email):
            return None
        for value, length in zip(values, self.lengths, strict=True):
            if len(value) != length or not _PLAIN.fullmatch(value):
                return None
            if any(key in value for key in self.keys):  # personalise() would replace it again
                return None
        made_id = make_msgid(idstring=f"d{delivery_id}", domain=self.domain)
        message_id = _message_id(made_id)
        if message_id is None:
            return None
        try:
            lines = [
                _fold_uris(name, _verbatim(name, value), _MAX_LINE, "\r\n").encode("ascii")
                for name, value in zip(self.names, headers, strict=True)
            ]
        except ValueError:  # build_message refuses it too, with its reason
            return None
        encoded = [v.encode("ascii") for v in values]
        filled = []
        for kind, k, start, stop in self.holes:
            if kind == "to":
                filled.append(f"To: {email}\r\n".encode("ascii"))
            elif kind == "message-id":
                filled.append(message_id)
            elif kind == "header":
                filled.append(lines[k])
            else:
                filled.append(encoded[k][start:stop])
        return Written(self.format % tuple(filled), made_id, self.fields)


def _message_id(value: str) -> bytes | None:
    """The Message-ID line as the email package folds it: on the header's line when it fits,
    else alone on the next (it has nowhere to break)."""
    if not value.isascii() or len(value) > _MAX_LINE - 1:
        return None
    line = f"Message-ID: {value}\r\n"
    if len(line) - 2 > _MAX_LINE:
        line = f"Message-ID:\r\n {value}\r\n"
    return line.encode("ascii")


def _recipient_headers(batch: Batch) -> dict[str, None]:
    recipients = batch.recipients
    assert isinstance(recipients, RecipientTable)
    return dict.fromkeys(recipients.patterns.headers)


def _overlap(keys: Sequence[str]) -> bool:
    """A placeholder inside another: replacing them one after the other would differ."""
    return any(a != b and a in b for a in keys for b in keys)


def _skeleton(
    batch: Batch, names: list[str], now: datetime
) -> tuple[bytes, list[tuple[int, int, _Hole]], frozenset[str]] | None:
    """build_message for a stand-in recipient, and where its recipient's places are: the
    message's bytes, (start, stop, hole) for each place, and its header fields' names."""
    stand_in = Recipient(0, _TO, {}, {name: f"XQPHEADER{i}X" for i, name in enumerate(names)})
    shell = dataclasses.replace(batch, text=_TEXT, html=_HTML, recipients=[stand_in])
    message = build_message(shell, stand_in, now)
    data = message.as_bytes()
    places: list[tuple[bytes, _Hole]] = [
        (f"\r\nTo: {_TO}\r\n".encode(), ("to", 0, 0, 0)),
        (f"\r\n{_TEXT}\r\n".encode(), ("text", 0, 0, 0)),
        (f"\r\n{_HTML}\r\n".encode(), ("html", 0, 0, 0)),
    ]
    places += [
        (f"\r\n{name}: XQPHEADER{i}X\r\n".encode(), ("header", i, 0, 0))
        for i, name in enumerate(names)
    ]
    found: list[tuple[int, int, _Hole]] = []
    for marker, hole in places:
        at = data.find(marker)
        if at < 0 or data.find(marker, at + 1) >= 0:
            return None
        found.append((at + 2, at + len(marker), hole))
    start = data.find(b"\r\nMessage-ID:")
    if start < 0:
        return None
    stop = data.index(b">\r\n", start + 2) + 3
    found.append((start + 2, stop, ("message-id", 0, 0, 0)))
    return data, sorted(found), frozenset(k.lower() for k in message)


def _split(data: bytes, places: list[tuple[int, int, _Hole]]) -> list[bytes | _Hole]:
    pieces: list[bytes | _Hole] = []
    at = 0
    for start, stop, hole in places:
        pieces += [data[at:start], hole]
        at = stop
    pieces.append(data[at:])
    return pieces


def _body_pieces(body: str, keys: Sequence[str], lengths: Sequence[int]) -> list[bytes | _Hole]:
    """`mime.encoded_body(personalise(body, values))` in pieces, for values of `lengths` that
    quoted-printable writes as they are: the text around them encoded once, the values' slots as
    holes. Ends with the part's line break, as build_message writes it."""
    split = re.compile("|".join(re.escape(k) for k in keys)) if keys else None
    index = {key: k for k, key in enumerate(keys)}
    pieces: list[bytes | _Hole] = []
    lines = body.encode("utf-8").splitlines()
    if not lines:
        return [b"\r\n"]
    for raw in lines:
        line = raw.decode("latin-1")
        if split is None or not split.search(line):
            pieces.append(_encoded_line(qp_quote(line)))
            continue
        quoted, spans = "", []  # the quoted line with fillers; each value's (k, start)
        at = 0
        for match in split.finditer(line):
            quoted += qp_quote(line[at : match.start()])
            k = index[match.group()]
            spans.append((k, len(quoted), lengths[k]))
            quoted += "x" * lengths[k]
            at = match.end()
        quoted += qp_quote(line[at:])
        pieces += _line_pieces(quoted, spans)
    return pieces


def _encoded_line(quoted: str) -> bytes:
    out = [quoted[a:b] + tail for a, b, tail in wrap_ranges(quoted, _QP_LINE)]
    return ("\r\n".join(out) + "\r\n").replace("=\n", "=\r\n").encode("ascii")


def _line_pieces(quoted: str, spans: list[tuple[int, int, int]]) -> list[bytes | _Hole]:
    """One quoted line holding values: its wrapped text, each value's characters as holes."""
    pieces: list[bytes | _Hole] = []
    for a, b, tail in wrap_ranges(quoted, _QP_LINE):
        at = a
        for k, start, length in spans:
            lo, hi = max(a, start), min(b, start + length)
            if lo >= hi:
                continue
            pieces += [quoted[at:lo].encode("ascii"), ("value", k, lo - start, hi - start)]
            at = hi
        pieces.append((quoted[at:b] + tail.replace("\n", "\r\n") + "\r\n").encode("ascii"))
    return pieces


def _compile(pieces: list[bytes | _Hole]) -> tuple[bytes, list[_Hole]]:
    """The pieces as one %-format of bytes and its holes, in order."""
    format_ = []
    holes: list[_Hole] = []
    for piece in pieces:
        if isinstance(piece, bytes):
            format_.append(piece.replace(b"%", b"%%"))
        else:
            format_.append(b"%s")
            holes.append(piece)
    return b"".join(format_), holes
