"""Transactional mail to one person: the double opt-in confirmation, and the note an already
subscribed address gets instead (so the form's answer never reveals who subscribes).

It goes through the configured backend as a one-recipient Batch marked `test` (it is not an
edition: its provider events must match no delivery in the ledger). It carries no
List-Unsubscribe: it is not a subscription message, and Google asks for the two kinds of mail to
come from different addresses ([subscribers] from_email; docs/standards.md §1).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import jinja2

from digest.backends import get_backend
from digest.backends.base import BackendError, Batch, EmailBackend, Recipient
from digest.config import Settings
from digest.errors import DigestError
from digest.render.email import compile_mjml, environment
from subscribers.optin import CONFIRMATION, Notice

log = logging.getLogger(__name__)

# Transactional mail belongs to no edition; the outbox backend writes it under transactional/,
# named by the rate-limit row's id (digest/backends/outbox.py).
TRANSACTIONAL_EDITION = 0


@dataclass(frozen=True)
class Mail:
    subject: str
    html: str
    text: str


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.web.base_url}/confirm/{token}"


def manage_url(settings: Settings, token: str) -> str:
    return f"{settings.web.base_url}/manage/{token}"


def unsubscribe_url(settings: Settings, token: str) -> str:
    return f"{settings.web.base_url}/u/{token}"


def render_notice(settings: Settings, notice: Notice) -> Mail:
    subject, mjml, text = notice_sources(settings, notice)
    return Mail(subject, compile_mjml(mjml), text)


def notice_sources(settings: Settings, notice: Notice) -> tuple[str, str, str]:
    """Subject, MJML and text of the notice, before MJML compiles (the node-MJML test uses it)."""
    title = settings.newsletter.title
    if notice.kind == CONFIRMATION:
        subject = f"Confirm your subscription to {title}"
        url = confirm_url(settings, notice.token)
        preheader = f"One click to start receiving {title}."
    else:
        subject = f"You are already subscribed to {title}"
        url = manage_url(settings, notice.token)
        preheader = "Nothing has changed; here is the link to your preferences."
    context = {
        "kind": notice.kind,
        "subject": subject,
        "preheader": preheader,
        "action_url": url,
        "ttl_hours": settings.subscribers.confirm_ttl_hours,
        "title": title,
        "publication_name": settings.publication.name,
        "postal_address": settings.publication.postal_address,
        "language": settings.newsletter.language,
    }
    env = environment()
    try:
        mjml = env.get_template("email/confirm.mjml.j2").render(context)
        text = env.get_template("email/confirm.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise BackendError(f"confirmation template error: {exc}") from None
    return subject, mjml, text


def build_batch(settings: Settings, notice: Notice) -> Batch:
    mail = render_notice(settings, notice)
    sender = settings.subscribers
    return Batch(
        batch_id=uuid.uuid4().hex,
        edition_id=TRANSACTIONAL_EDITION,
        subject=mail.subject,
        html=mail.html,
        text=mail.text,
        from_email=sender.from_email or settings.newsletter.from_email,
        from_name=sender.from_name or settings.newsletter.from_name,
        reply_to=settings.newsletter.reply_to,
        # RFC 3834: an automatic message; auto-responders must not answer it.
        headers={"Auto-Submitted": "auto-generated"},
        recipients=[Recipient(delivery_id=notice.send_id, email=notice.email)],
        test=True,
        transactional=True,
    )


def send_notice(settings: Settings, notice: Notice, backend: EmailBackend | None = None) -> bool:
    """Send it; False (logged, without the address) if the backend did not take it. The person
    can ask for another copy; the web answer must not change either way. Where it went is
    logged (an outbox file's path, the provider's message id): `digest serve` shows it."""
    what = f"{_KINDS.get(notice.kind, notice.kind)} email {notice.send_id}"
    try:
        batch = build_batch(settings, notice)
        mailer = backend or get_backend(settings)
        with mailer:
            statuses = mailer.send_batch(batch)
    except (BackendError, DigestError) as exc:
        log.error("%s not sent: %s", what, exc)
        return False
    ok = bool(statuses) and all(s.status == "accepted" for s in statuses)
    if not ok:
        reasons = "; ".join(f"{s.status}: {s.reason}" for s in statuses) or "no answer"
        log.error("%s refused: %s", what, reasons)
        return False
    where = ", ".join(s.provider_id or "" for s in statuses if s.provider_id)
    log.info("%s handed to the %s backend%s", what, mailer.name, f": {where}" if where else "")
    return True


# Notice kinds as a log line names them.
_KINDS = {CONFIRMATION: "confirmation", "already": "already-subscribed note"}
