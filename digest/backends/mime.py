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


POLICY = DigestPolicy(linesep="\r\n", max_line_length=78)


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
