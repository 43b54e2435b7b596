"""Notes to staff (`[schedule] notify`): a draft to review, a week skipped and why, a failure.

Each note is an email through the configured backend, sent like the confirmation emails
(digest.people.notify): a transactional Batch marked `test`, outside the ledger, from
`[subscribers] from_email`, without List-Unsubscribe. It says what happened, shows the
edition (subject, articles, send window) and the preflight result, and names the commands
that act on it. A note that cannot be sent is logged and reported, never fatal: the schedule's
own work (the build, the send) matters more than the mail about it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import jinja2

from digest.backends import get_backend
from digest.backends.base import BackendError, Batch, EmailBackend, Recipient
from digest.config import Settings
from digest.edition.lifecycle import send_window
from digest.errors import DigestError
from digest.people.notify import TRANSACTIONAL_EDITION
from digest.render.email import environment
from digest.schedule.checks import Preflight
from digest.schedule.slots import Slots
from digest.store.models import Edition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    section: str
    title: str
    url: str


@dataclass(frozen=True)
class EditionBrief:
    """An edition as a note shows it (read inside a session, used after it)."""

    id: int
    status: str
    subject: str
    week: str
    window: str
    items: tuple[Item, ...]
    # The edition in the staff API (`digest serve`): POST {api}/approve approves it.
    api: str = ""


@dataclass(frozen=True)
class Notice:
    subject: str
    summary: str
    details: tuple[str, ...] = ()
    edition: EditionBrief | None = None
    preflight: Preflight | None = None
    # (what it does, the command), in the order staff would run them.
    commands: tuple[tuple[str, str], ...] = field(default=())


@dataclass
class Sent:
    """Who took the note, or why nobody did."""

    to: list[str] = field(default_factory=list)
    error: str | None = None


def brief(edition: Edition, settings: Settings, slots: Slots) -> EditionBrief:
    opens, closes = send_window(edition, settings)
    return EditionBrief(
        id=edition.id,
        status=edition.status,
        subject=edition.subject,
        week=f"{slots.local(edition.window_start)} → {slots.local(edition.cutoff)}",
        window=f"{slots.local(opens)} → {slots.local(closes)}",
        items=tuple(Item(i.section, i.title, i.url) for i in edition.items),
        api=f"{settings.web.base_url}/api/editions/{edition.id}",
    )


def send(settings: Settings, notice: Notice, backend: EmailBackend | None = None) -> Sent:
    """Mail the note to every `[schedule] notify` address (none configured: nobody)."""
    addresses = settings.schedule.notify
    if not addresses:
        return Sent(error="no [schedule] notify addresses")
    try:
        batch = _batch(settings, notice, addresses)
        mailer = backend or get_backend(settings)
        with mailer:
            statuses = mailer.send_batch(batch)
    except (BackendError, DigestError, jinja2.TemplateError) as exc:
        log.error("note to staff not sent (%s): %s", notice.subject, exc)
        return Sent(error=str(exc))
    taken = {s.delivery_id for s in statuses if s.status == "accepted"}
    refused = [f"{s.status}: {s.reason}" for s in statuses if s.status != "accepted"]
    if refused:
        log.error("note to staff refused (%s): %s", notice.subject, "; ".join(refused))
    to = [r.email for r in batch.recipients if r.delivery_id in taken]
    return Sent(to=to, error="; ".join(refused) or None)


def _batch(settings: Settings, notice: Notice, addresses: list[str]) -> Batch:
    context = {
        "title": settings.newsletter.title,
        "publication_name": settings.publication.name,
        "language": settings.newsletter.language,
        "subject": notice.subject,
        "summary": notice.summary,
        "details": notice.details,
        "edition": notice.edition,
        "preflight": notice.preflight,
        "commands": notice.commands,
    }
    env = environment()
    sender = settings.subscribers
    return Batch(
        batch_id=uuid.uuid4().hex,
        edition_id=TRANSACTIONAL_EDITION,
        subject=f"[{settings.newsletter.title}] {notice.subject}",
        html=env.get_template("staff_notice.html.j2").render(context),
        text=env.get_template("staff_notice.txt.j2").render(context),
        from_email=sender.from_email or settings.newsletter.from_email,
        from_name=sender.from_name or settings.newsletter.from_name,
        # RFC 3834: an automatic message; auto-responders must not answer it.
        headers={"Auto-Submitted": "auto-generated"},
        recipients=[Recipient(i, email) for i, email in enumerate(addresses, start=1)],
        test=True,
    )


def at(moment: datetime, slots: Slots) -> str:
    """A moment for `--now`: ISO-8601 with its offset, unambiguous on a fall-back night."""
    return moment.astimezone(slots.tz).isoformat(timespec="minutes")
