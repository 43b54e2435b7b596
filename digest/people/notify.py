"""Mail to one person: the double opt-in confirmation, the note an already subscribed address
gets instead (so the form's answer never reveals who subscribes), and the optional welcome after
confirming ([subscribers] welcome_email).

Each is rendered by the editions' pipeline (render_mail: the same layout, palettes and the
publication's template overrides) and goes through the configured backend as a one-recipient
Batch marked `test` (not an edition: its provider events must match no delivery in the ledger).
The confirmation carries no List-Unsubscribe: it is not a subscription message, and Google asks
for the two kinds of mail to come from different addresses ([subscribers] from_email;
docs/standards.md §1). The welcome is the first message of the subscription: it comes from the
newsletter's address with the reader's own unsubscribe links, in the body and the headers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from digest.backends import get_backend
from digest.backends.base import BackendError, Batch, EmailBackend, Recipient
from digest.branding import branding
from digest.config import Settings
from digest.errors import DigestError
from digest.people.links import recipients
from digest.render.email import Mail, compile_mjml, mail_sources
from digest.render.inert import clean, url_value
from digest.render.words import join_names
from subscribers.optin import CONFIRMATION, Notice

log = logging.getLogger(__name__)

# Transactional mail belongs to no edition; the outbox backend writes it under transactional/,
# named by the rate-limit row's id (digest/backends/outbox.py).
TRANSACTIONAL_EDITION = 0


@dataclass(frozen=True)
class Welcome:
    """Someone who just confirmed: the welcome tells them what they will get."""

    subscriber_id: int  # names the outbox file
    email: str = field(repr=False)
    public_id: str
    name: str | None
    sections: Sequence[str] | None  # None: every section
    # The newest edition's archive page (edition/archive.py), for a button to it; None: none.
    latest_url: str | None = None


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
    }
    return mail_sources("confirm", context, branding(settings))


def frequency(window_days: int) -> str:
    """How often an edition comes, from the length of its week: 'every week'."""
    return {1: "every day", 7: "every week", 14: "every two weeks"}.get(
        window_days, f"every {window_days} days"
    )


def render_welcome(settings: Settings, welcome: Welcome) -> Mail:
    """The welcome, with the per-recipient placeholders its backend fills, and a button to the
    latest edition when the archive has one."""
    subject, mjml, text = welcome_sources(settings, welcome)
    return Mail(subject, compile_mjml(mjml), text)


def welcome_sources(settings: Settings, welcome: Welcome) -> tuple[str, str, str]:
    """Subject, MJML and text of the welcome, before MJML compiles (the node-MJML test)."""
    every = list(settings.newsletter.sections)
    chosen = [s for s in every if welcome.sections is None or s in welcome.sections] or every
    context = {
        "subject": f"Welcome to {settings.newsletter.title}",
        "preheader": f"What you will get, and how often: {join_names(chosen)}.",
        "name": clean(welcome.name or ""),
        "frequency": frequency(settings.newsletter.window_days),
        "section_names": chosen,
        "sections_label": join_names(chosen),
        "every_section": len(chosen) == len(every),
        "latest_url": url_value(welcome.latest_url) if welcome.latest_url else None,
    }
    return mail_sources("welcome", context, branding(settings))


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


def welcome_batch(settings: Settings, welcome: Welcome) -> Batch:
    """From the newsletter's address, with the reader's own links (body and List-Unsubscribe)
    made as an edition's are (people/links.py)."""
    mail = render_welcome(settings, welcome)
    row = (welcome.subscriber_id, welcome.email, "", welcome.public_id)
    (recipient,) = recipients(
        [row], settings.web.base_url, settings.secret_keys(), settings.delivery.unsubscribe_mailto
    )
    nl = settings.newsletter
    return Batch(
        batch_id=uuid.uuid4().hex,
        edition_id=TRANSACTIONAL_EDITION,
        subject=mail.subject,
        html=mail.html,
        text=mail.text,
        from_email=nl.from_email,
        from_name=nl.from_name,
        reply_to=nl.reply_to,
        headers={"Auto-Submitted": "auto-generated"},
        recipients=[recipient],
        test=True,
    )


def send_welcome(settings: Settings, welcome: Welcome, backend: EmailBackend | None = None) -> bool:
    """Send it; False (logged, without the address) if it could not go. Nothing retries it:
    the subscription stands either way, and every edition carries the same links."""
    try:
        batch = welcome_batch(settings, welcome)
        mailer = backend or get_backend(settings)
        with mailer:
            statuses = mailer.send_batch(batch)
    except (BackendError, DigestError) as exc:
        log.error("welcome email for subscriber %s not sent: %s", welcome.subscriber_id, exc)
        return False
    ok = all(s.status == "accepted" for s in statuses)
    if not ok:
        reasons = "; ".join(f"{s.status}: {s.reason}" for s in statuses)
        log.error("welcome email for subscriber %s refused: %s", welcome.subscriber_id, reasons)
    return ok


# Notice kinds as a log line names them.
_KINDS = {CONFIRMATION: "confirmation", "already": "already-subscribed note"}
