"""RFC 5322 messages for the backends that speak MIME themselves (SMTP, the outbox).

multipart/alternative with text/plain first and text/html last (RFC 2046 §5.1.4), bodies in
quoted-printable so no line exceeds 998 characters (RFC 5322 §2.1.1).

List-Unsubscribe and List-Unsubscribe-Post are written as they are given, plain ASCII: receivers
read the raw header for the one-click URL (RFC 2369, RFC 8058), and the stock policy would turn a
URL longer than the line limit into RFC 2047 encoded-words they cannot use. They are folded only
after the comma between two URIs; one long URI stays on one line (up to 998 characters is legal,
RFC 5322 §2.1.1). Every other header (a non-ASCII Subject, say) is folded and encoded as usual.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import Any

from digest.backends.base import Batch, Recipient, personalise

# Written verbatim (folded between URIs only), never refolded or encoded.
VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_BETWEEN_URIS = re.compile(r"(?<=>)\s*,\s*(?=<)")
_MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF


class DigestPolicy(EmailPolicy):
    """policy.SMTP (CRLF, 78-character lines), except for VERBATIM_HEADERS."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in VERBATIM_HEADERS and isinstance(value, str):
            return name, _verbatim(name, value)
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: str) -> str:
        if name.lower() in VERBATIM_HEADERS and isinstance(value, str):
            return _fold_uris(name, value, self.max_line_length or _MAX_LINE, self.linesep)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in VERBATIM_HEADERS and isinstance(value, str):
            folded = _fold_uris(name, value, self.max_line_length or _MAX_LINE, self.linesep)
            return folded.encode("ascii")
        return super().fold_binary(name, value)


def _verbatim(name: str, value: str) -> str:
    value = " ".join(value.split())  # one logical line: any folding in the input is undone
    if not value.isascii():
        raise ValueError(f"{name} must be plain ASCII (RFC 2369), got {value!r}")
    if len(value) + len(name) + 2 > _MAX_LINE and "," not in value:
        raise ValueError(f"{name} is longer than the {_MAX_LINE}-character line limit")
    return value


def _fold_uris(name: str, value: str, max_line: int, linesep: str) -> str:
    """`Name: <a>, <b>`, with a fold after a comma when the next URI would pass `max_line`."""
    parts = _BETWEEN_URIS.split(value)
    lines = [f"{name}: {parts[0]}"]
    for part in parts[1:]:
        lines[-1] += ","
        if len(lines[-1]) + 1 + len(part) <= max_line:
            lines[-1] += " " + part
        else:
            lines.append(" " + part)
    return linesep.join(lines) + linesep


_QP_LINE = 78
POLICY = DigestPolicy(linesep="\r\n", max_line_length=_QP_LINE)


def build_message(batch: Batch, recipient: Recipient, now: datetime) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(batch.from_email, batch.from_name)
    msg["To"] = recipient.email
    msg["Subject"] = batch.subject
    msg["Date"] = format_datetime(now)
    domain = batch.from_email.rsplit("@", 1)[-1]
    msg["Message-ID"] = make_msgid(idstring=f"d{recipient.delivery_id}", domain=domain)
    if batch.reply_to:
        msg["Reply-To"] = batch.reply_to
    for name, value in {**batch.headers, **recipient.headers}.items():
        msg[name] = value
    values = dict(recipient.substitutions)
    msg.set_content(
        personalise(batch.text, values), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    msg.add_alternative(
        personalise(batch.html, values), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    return msg


def _address(email: str, name: str | None) -> str:
    if not name:
        return email
    username, _, domain = email.rpartition("@")
    return str(Address(display_name=name, username=username, domain=domain))


def encoded_body(body: str) -> bytes:
    """`body` as `build_message` puts it in a part: quoted-printable, CRLF line ends, byte for
    byte (a property test holds it to the email package's encoder). What Gmail's clipping
    counts (docs/standards.md §2), for preflight to measure without building a message, at a
    fifth of the email package's cost (its encoder maps every character in Python)."""
    lines = body.encode("utf-8").splitlines()
    data = _qp_encode(b"\n".join(lines).decode("latin-1") + "\n", _QP_LINE)
    return data.replace("\n", "\r\n").encode("ascii")


# What quoprimime's body map leaves alone: printable ASCII but "=", and tab, CR, LF ("=" is
# replaced first, by str.replace: an HTML part has thousands of them).
_QP_UNSAFE = re.compile(r"[^ -~\t\r\n]")


def _qp_quote(match: re.Match[str]) -> str:
    return f"={ord(match.group()):02X}"


def _qp_encode(body: str, maxlinelen: int) -> str:
    """email.quoprimime.body_encode(body, maxlinelen) with eol "\\n", the same output."""
    if not body:
        return body
    quoted = _QP_UNSAFE.sub(_qp_quote, body.replace("=", "=3D"))
    out: list[str] = []
    append = out.append
    for line in quoted.splitlines():
        for start, stop, tail in wrap_ranges(line, maxlinelen):
            append(line[start:stop] + tail)
    if quoted[-1] in "\r\n":
        append("")
    return "\n".join(out)


def qp_quote(text: str) -> str:
    """The characters of a body's line as quoted-printable writes them (before wrapping)."""
    return _QP_UNSAFE.sub(_qp_quote, text.replace("=", "=3D"))


def wrap_ranges(line: str, maxlinelen: int = _QP_LINE) -> list[tuple[int, int, str]]:
    """How quoprimime wraps one quoted line: each output line is `line[start:stop] + tail`
    (tail: a soft break "=", an escaped trailing blank, or nothing). Where it breaks depends
    only on where the line's "=XX" escapes are, so a line whose text changes without moving
    them wraps at the same places (mimetemplate relies on it)."""
    ranges: list[tuple[int, int, str]] = []
    append = ranges.append
    width = maxlinelen - 1
    start = 0
    laststart = len(line) - 1 - maxlinelen
    while start <= laststart:
        stop = start + width
        if line[stop - 2] == "=":
            append((start, stop - 1, ""))
            start = stop - 2
        elif line[stop - 1] == "=":
            append((start, stop, ""))
            start = stop - 1
        else:
            append((start, stop, "="))
            start = stop
    if line and line[-1] in " \t":
        room = start - laststart
        if room >= 3:
            tail = f"={ord(line[-1]):02X}"
        elif room == 2:
            tail = line[-1] + "=\n"
        else:
            tail = "=\n" + f"={ord(line[-1]):02X}"
        append((start, len(line) - 1, tail))
    else:
        append((start, len(line), ""))
    return ranges


def encoded_offset(part: bytes, text: str) -> int:
    """Where ASCII `text` (a URL) starts in a quoted-printable `part`, in bytes of the part as
    sent, soft line breaks included; -1 when it is not there."""
    pieces = part.split(b"=\r\n")
    at = b"".join(pieces).find(text.encode("ascii").replace(b"=", b"=3D"))
    if at < 0:
        return -1
    consumed = breaks = 0
    for piece in pieces:
        if consumed + len(piece) > at:
            break
        consumed += len(piece)
        breaks += 1
    return at + 3 * breaks


def raw_headers(message: bytes) -> list[tuple[str, str]]:
    """The header fields of a message as they are on the wire: unfolded (RFC 5322 §2.2.3),
    never decoded, so an RFC 2047 encoded-word shows as one."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    fields = []
    for line in re.sub(r"\r\n(?=[ \t])", "", head).split("\r\n"):
        name, _, value = line.partition(":")
        fields.append((name, value.lstrip(" \t")))
    return fields
