"""Past editions in numbers, for the console's history and dashboard: planned, accepted, failed,
bounced, opened, clicked and unsubscribed per edition, and the articles readers clicked most.

Where each number comes from:
- planned: the audience frozen when the send began; accepted, failed, skipped and the rest:
  the ledger (digest.ledger.tally, which adds up batches, so a million rows cost a few rows);
- bounced: recipients with a SendGrid `bounce` event (hard bounces and `blocked` ones);
- opens and clicks: the webhook's counters (machine opens apart), clicks per link too;
- unsubscribed: recipients who left the list (a consent `unsubscribe` event: one-click, the
  unsubscribe or preference page, a webhook unsubscribe) after this edition reached them and
  before the next one did. Unsubscribe links carry no edition, so the edition a person left
  after is the last one they were sent; an erased person's history is gone and not counted.
Read-only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.edition import archive
from digest.ledger import tally
from digest.store.models import (
    ACCEPTED,
    APPROVED,
    CLAIMED,
    DEFERRED,
    DRAFT,
    FAILED,
    PLANNED,
    SKIPPED,
    SUBMITTED,
    Delivery,
    Edition,
    EditionSend,
    LinkClick,
    WebhookEvent,
)
from subscribers.consent import UNSUBSCRIBE
from subscribers.models import Consent

PAGE = 52  # a year of weekly editions
TOP_PER_EDITION = 3
TOP_OVERALL = 10


@dataclass
class Clicked:
    title: str
    url: str
    clicks: int
    edition_id: int


@dataclass
class EditionNumbers:
    edition_id: int
    status: str
    subject: str
    cutoff: datetime
    status_reason: str | None
    archive_url: str | None = None
    send_state: str | None = None  # None: never sent (skipped, cancelled before a send)
    started_at: datetime | None = None
    sent_at: datetime | None = None
    planned: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    bounced: int = 0
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    unsubscribed: int = 0
    top: list[Clicked] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.counts[ACCEPTED]

    @property
    def failed(self) -> int:
        return self.counts[FAILED]

    @property
    def skipped(self) -> int:
        return self.counts[SKIPPED]

    @property
    def uncertain(self) -> int:
        return self.counts[SUBMITTED]

    @property
    def remaining(self) -> int:
        return sum(self.counts[s] for s in (PLANNED, CLAIMED, DEFERRED))

    def as_json(self) -> dict[str, Any]:
        return {
            "edition_id": self.edition_id,
            "status": self.status,
            "subject": self.subject,
            "cutoff": self.cutoff.isoformat(),
            "send_state": self.send_state,
            "planned": self.planned,
            "accepted": self.accepted,
            "failed": self.failed,
            "bounced": self.bounced,
            "opens": self.opens,
            "clicks": self.clicks,
            "unsubscribed": self.unsubscribed,
            "top": [{"title": c.title, "url": c.url, "clicks": c.clicks} for c in self.top],
        }


@dataclass
class History:
    editions: list[EditionNumbers]
    most_clicked: list[Clicked]
    total: int  # past editions in all (the page shows `editions`)
    offset: int
    limit: int


def past(session: Session, settings: Settings, limit: int = PAGE, offset: int = 0) -> History:
    """Every edition past the draft stage (sent, sending, cancelled, skipped), newest week
    first, a page at a time, with its numbers."""
    limit, offset = max(1, min(limit, 500)), max(0, offset)
    query = select(Edition).where(Edition.status.not_in((DRAFT, APPROVED)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = list(
        session.scalars(
            query.options(selectinload(Edition.items))
            .order_by(Edition.cutoff.desc(), Edition.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    rows = numbers(session, settings, found)
    overall = sorted((c for r in rows for c in r.all_clicked), key=_by_clicks)[:TOP_OVERALL]
    for r in rows:
        r.numbers.top = sorted(r.all_clicked, key=_by_clicks)[:TOP_PER_EDITION]
    return History([r.numbers for r in rows], overall, int(total), offset, limit)


def last_sent(session: Session, settings: Settings) -> EditionNumbers | None:
    """The numbers of the edition whose send began last (the dashboard's "last edition")."""
    newest = session.scalar(
        select(Edition)
        .join(EditionSend, EditionSend.edition_id == Edition.id)
        .options(selectinload(Edition.items))
        .order_by(EditionSend.started_at.desc(), Edition.id.desc())
        .limit(1)
    )
    if newest is None:
        return None
    (row,) = numbers(session, settings, [newest])
    row.numbers.top = sorted(row.all_clicked, key=_by_clicks)[:TOP_PER_EDITION]
    return row.numbers


@dataclass
class _Row:
    numbers: EditionNumbers
    all_clicked: list[Clicked]


def _by_clicks(c: Clicked) -> tuple[int, int, str]:
    return (-c.clicks, -c.edition_id, c.title)


def numbers(session: Session, settings: Settings, editions: list[Edition]) -> list[_Row]:
    ids = [e.id for e in editions]
    sends = {s.edition_id: s for s in session.scalars(select(EditionSend).where(_in(ids)))}
    bounced = _bounced(session, ids)
    clicked = _clicked(session, editions)
    left = _unsubscribed(session, ids)
    rows = []
    for e in editions:
        n = EditionNumbers(e.id, e.status, e.subject, e.cutoff, e.status_reason)
        n.archive_url = archive.archive_url(session, settings, e)
        n.sent_at = e.sent_at
        sent = sends.get(e.id)
        if sent is not None:
            n.send_state, n.started_at, n.planned = sent.state, sent.started_at, sent.planned
            n.counts = tally.counts(session, e.id)
            n.opens, n.machine_opens, n.clicks = sent.opens, sent.machine_opens, sent.clicks
        n.bounced = bounced.get(e.id, 0)
        n.unsubscribed = left.get(e.id, 0)
        rows.append(_Row(n, clicked.get(e.id, [])))
    return rows


def _in(ids: list[int]) -> Any:
    return EditionSend.edition_id.in_(ids)


def _bounced(session: Session, ids: list[int]) -> dict[int, int]:
    """Recipients with at least one bounce event, per edition (a delivery bounces once, but
    SendGrid may report it again under a new event id)."""
    query = (
        select(WebhookEvent.edition_id, func.count(func.distinct(WebhookEvent.delivery_id)))
        .where(WebhookEvent.edition_id.in_(ids), WebhookEvent.event == "bounce")
        .group_by(WebhookEvent.edition_id)
    )
    return {int(e): int(n) for e, n in session.execute(query) if e is not None}


def _clicked(session: Session, editions: list[Edition]) -> dict[int, list[Clicked]]:
    """Each edition's clicked links that are its articles (the archive, preferences and
    unsubscribe links are not articles), with the article's title as sent."""
    titles = {(e.id, i.url): i.title for e in editions for i in e.items}
    query = select(LinkClick).where(LinkClick.edition_id.in_([e.id for e in editions]))
    found: dict[int, list[Clicked]] = defaultdict(list)
    for link in session.scalars(query):
        title = titles.get((link.edition_id, link.url))
        if title is not None and link.clicks > 0:
            found[link.edition_id].append(Clicked(title, link.url, link.clicks, link.edition_id))
    return found


def _unsubscribed(session: Session, ids: list[int]) -> dict[int, int]:
    """People who left, per edition: each unsubscribe goes to the last edition whose send to
    them had begun by then (see the module's docstring)."""
    started = dict(
        session.execute(
            select(EditionSend.edition_id, EditionSend.started_at).where(
                EditionSend.started_at.is_not(None)
            )
        ).all()
    )
    if not (set(ids) & set(started)):
        return {}
    since = min(started[i] for i in ids if i in started)
    # Driven by the few unsubscribes; each finds its deliveries through the ledger's unique
    # (edition_id, subscriber_id) index, one probe per edition that was sent.
    query = (
        select(Consent.subscriber_id, Consent.at, Delivery.edition_id)
        .join(Delivery, Delivery.subscriber_id == Consent.subscriber_id)
        .where(
            Consent.event == UNSUBSCRIBE,
            Consent.at >= since,
            Delivery.edition_id.in_(list(started)),
        )
    )
    received: dict[tuple[int, datetime], list[int]] = defaultdict(list)
    for subscriber_id, at, edition_id in session.execute(query):
        received[(subscriber_id, at)].append(edition_id)
    counted: dict[int, set[int]] = defaultdict(set)
    for (subscriber_id, at), editions in received.items():
        before = [e for e in editions if _aware(started[e]) <= _aware(at)]
        if before:
            last = max(before, key=lambda e: (_aware(started[e]), e))
            counted[last].add(subscriber_id)
    return {e: len(people) for e, people in counted.items() if e in ids}


def _aware(moment: datetime) -> datetime:
    """A naive moment is UTC (as every column stores it): compare like with like."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
