"""RFC 5322 messages for the backends that speak MIME themselves (SMTP, the outbox).

multipart/alternative with text/plain first and text/html last (RFC 2046 §5.1.4), bodies in
quoted-printable so no line exceeds 998 characters (RFC 5322 §2.1.1).
"""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digest.backends.base import Batch, Recipient, personalise

POLICY = policy.SMTP.clone(max_line_length=78)


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
