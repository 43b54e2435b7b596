"""The public archive: every edition whose send has begun, at a stable address.

An edition's address is `/archive/<cut-off date>` (the date in the publication's timezone). Two
archived editions could share a date (a short `window_days`); the one whose send began first
keeps the bare date and a later one is `<date>-<id>`, so an address, once mailed, never changes
its meaning. An edition is archived from the moment its send begins, not when it ends: the
first readers of a long send click "View in browser" while the rest are still being mailed.

Its page is the edition as sent, all sections, rendered by the email renderer as a web copy:
the footer invites the reader to subscribe, and no per-recipient placeholder or link survives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.edition.options import branding
from digest.edition.views import edition_view
from digest.render.email import WebCopy, render_edition
from digest.render.feed import Channel, FeedItem, rss
from digest.render.placeholders import without_personal_links
from digest.store.models import APPROVED, DRAFT, SENDING, SENT, Edition

ARCHIVED = (SENDING, SENT)
PREFIX = "/archive"
# The feed carries the newest editions; the index page lists them all.
FEED_ITEMS = 50


@dataclass(frozen=True)
class Entry:
    edition_id: int
    slug: str
    subject: str
    cutoff: datetime
    published_at: datetime  # when its send began
    headlines: tuple[str, ...]
    intro: str


def slugs(
    editions: Iterable[tuple[int, datetime, datetime | None]], tz: ZoneInfo
) -> dict[int, str]:
    """Edition id -> its address's last part, from (id, cutoff, send began) of every archived
    edition: the local cut-off date; on a shared date, the first sent keeps it."""
    taken: set[str] = set()
    found: dict[int, str] = {}
    order = sorted(editions, key=lambda e: (e[2] or e[1], e[0]))
    for edition_id, cutoff, _ in order:
        day = f"{cutoff.astimezone(tz):%Y-%m-%d}"
        slug = day if day not in taken else f"{day}-{edition_id}"
        taken.add(slug)
        found[edition_id] = slug
    return found


def _archived_slugs(session: Session, settings: Settings) -> dict[int, str]:
    rows = session.execute(
        select(Edition.id, Edition.cutoff, Edition.send_started_at).where(
            Edition.status.in_(ARCHIVED)
        )
    )
    return slugs(((i, c, s) for i, c, s in rows), settings.publication.tz)


def enabled(settings: Settings) -> bool:
    return settings.web.archive


def archive_url(session: Session, settings: Settings, edition: Edition) -> str | None:
    """The edition's public page, or None: no archive, or its send has not begun."""
    if not enabled(settings) or edition.status not in ARCHIVED:
        return None
    slug = _archived_slugs(session, settings).get(edition.id)
    return None if slug is None else f"{settings.web.base_url}{PREFIX}/{slug}"


def expected_url(
    session: Session, settings: Settings, edition: Edition, now: datetime
) -> str | None:
    """The page the edition has, or will have if its send begins at `now`: what a send puts
    in its "View in browser" link (the console's preview shows the email as it will go out).
    None: no archive, or an edition that will never be sent (cancelled, skipped)."""
    if not enabled(settings):
        return None
    if edition.status in ARCHIVED:
        return archive_url(session, settings, edition)
    if edition.status not in (DRAFT, APPROVED):
        return None
    rows = session.execute(
        select(Edition.id, Edition.cutoff, Edition.send_started_at).where(
            Edition.status.in_(ARCHIVED)
        )
    )
    known = [(i, c, s) for i, c, s in rows] + [(edition.id, edition.cutoff, now)]
    slug = slugs(known, settings.publication.tz)[edition.id]
    return f"{settings.web.base_url}{PREFIX}/{slug}"


def entries(session: Session, settings: Settings, limit: int | None = None) -> list[Entry]:
    """The archived editions, newest cut-off first."""
    found = _archived_slugs(session, settings)
    query = (
        select(Edition)
        .where(Edition.id.in_(found))
        .options(selectinload(Edition.items))
        .order_by(Edition.cutoff.desc(), Edition.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        Entry(
            edition_id=e.id,
            slug=found[e.id],
            subject=e.subject,
            cutoff=e.cutoff,
            published_at=e.send_started_at or e.cutoff,
            headlines=tuple(i.title for i in e.items),
            intro=e.intro,
        )
        for e in session.scalars(query)
    ]


def latest_url(session: Session, settings: Settings) -> str | None:
    """The newest archived edition's page (the welcome email links it), or None."""
    newest = entries(session, settings, limit=1)
    return f"{settings.web.base_url}{PREFIX}/{newest[0].slug}" if newest else None


def find(session: Session, settings: Settings, slug: str) -> Edition | None:
    """The archived edition at `/archive/<slug>`, or None."""
    edition_id = next((i for i, s in _archived_slugs(session, settings).items() if s == slug), None)
    if edition_id is None:
        return None
    return session.scalar(
        select(Edition).where(Edition.id == edition_id).options(selectinload(Edition.items))
    )


def web_copy(settings: Settings, edition: Edition) -> str:
    """The edition's page: the email as sent, every section, nobody's links."""
    base = settings.web.base_url
    subscribe = f"{base}/subscribe"
    copy = WebCopy(subscribe_url=subscribe, archive_url=f"{base}{PREFIX}/")
    html = render_edition(edition_view(edition), branding(settings), None, web_copy=copy).html
    return without_personal_links(html, subscribe)


def feed(session: Session, settings: Settings, now: datetime) -> bytes:
    """RSS 2.0 of the newest archived editions."""
    base = settings.web.base_url
    nl = settings.newsletter
    channel = Channel(
        title=f"{nl.title} · {settings.publication.name}",
        link=f"{base}{PREFIX}/",
        self_url=f"{base}{PREFIX}/feed.xml",
        description=f"Every edition of {nl.title}, the newsletter of {settings.publication.name}.",
        language=nl.language,
        built_at=now,
    )
    items = [
        FeedItem(
            title=e.subject,
            link=f"{base}{PREFIX}/{e.slug}",
            published_at=e.published_at,
            summary=e.intro,
            headlines=e.headlines,
        )
        for e in entries(session, settings, limit=FEED_ITEMS)
    ]
    return rss(channel, items)
