"""Building an edition: gather → store candidates → rank the week → persist. The one place an
edition is written; it either happens completely or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from digest.candidate import Candidate
from digest.config import Settings
from digest.db import transaction
from digest.errors import EditionStateError, EmptyWeekError, GatherError, NotFoundError
from digest.gather import Fetcher, GatherResult, SourceReport, SourceSpec, gather
from digest.gather.fetch import fetch
from digest.models import DRAFT, Article, Edition, EditionItem, Source
from digest.rank import Ranked, RankRules, rank
from digest.render import Branding, EditionView, ItemView, date_label


@dataclass
class BuildReport:
    edition: Edition
    ranked: list[Ranked]
    sources: list[SourceReport]
    candidates: int
    in_window: int
    replaced_draft: bool = False
    warnings: list[str] = field(default_factory=list)


def week_window(now: datetime, tz: ZoneInfo, days: int) -> tuple[datetime, datetime]:
    """The `days` calendar days before `now` in the publication's timezone (DST-safe)."""
    local = now.astimezone(tz)
    start = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=tz)
    return start, now


def source_specs(settings: Settings) -> list[SourceSpec]:
    return [
        SourceSpec(url=settings.source_location(s), kind=s.kind, section=s.section)
        for s in settings.sources
    ]


def rank_rules(settings: Settings) -> RankRules:
    nl = settings.newsletter
    return RankRules(
        max_items=nl.max_items, per_section=nl.per_section, sections=tuple(nl.sections)
    )


def branding(settings: Settings) -> Branding:
    pub, nl = settings.publication, settings.newsletter
    return Branding(
        publication_name=pub.name,
        publication_url=pub.url,
        postal_address=pub.postal_address,
        title=nl.title,
        timezone=pub.timezone,
        logo_url=pub.logo_url,
        language=nl.language,
    )


def build_edition(
    factory: sessionmaker[Session], settings: Settings, now: datetime, fetcher: Fetcher = fetch
) -> BuildReport:
    specs = source_specs(settings)
    if not specs:
        raise GatherError("no [[sources]] configured: nothing to build an edition from")
    gathered = gather(
        specs, now=now, fetcher=fetcher, excerpt_words=settings.newsletter.excerpt_words
    )
    if not any(r.ok for r in gathered.reports):
        reasons = "; ".join(f"{r.url}: {r.error}" for r in gathered.reports)
        raise GatherError(f"no source could be read ({reasons})")
    start, end = week_window(now, settings.publication.tz, settings.newsletter.window_days)
    with transaction(factory) as session:
        record_sources(session, gathered, specs, now)
        store_candidates(session, gathered.candidates, now)
        session.flush()
        week = window_candidates(session, start, end)
        ranked = rank(week, now, rank_rules(settings))
        if len(ranked) < settings.newsletter.min_items:
            raise EmptyWeekError(
                f"only {len(ranked)} article(s) between {start:%Y-%m-%d %H:%M} and "
                f"{end:%Y-%m-%d %H:%M} {settings.publication.timezone} "
                f"(min_items is {settings.newsletter.min_items}); no edition was built"
            )
        edition, replaced = _fresh_edition(session, settings, start, end, now)
        _add_items(session, edition, ranked)
    warnings = [f"source failed: {r.url}: {r.error}" for r in gathered.failures]
    return BuildReport(
        edition=edition,
        ranked=ranked,
        sources=gathered.reports,
        candidates=len(gathered.candidates),
        in_window=len(week),
        replaced_draft=replaced,
        warnings=warnings,
    )


def record_sources(
    session: Session, gathered: GatherResult, specs: Sequence[SourceSpec], now: datetime
) -> None:
    by_url = {s.url: s for s in specs}
    for report in gathered.reports:
        spec = by_url[report.url]
        row = session.scalar(select(Source).where(Source.url == report.url))
        if row is None:
            row = Source(url=report.url, kind=spec.kind)
            session.add(row)
        row.section = spec.section
        row.last_fetched_at = now
        row.last_status = "ok" if report.ok else "error"
        row.last_error = report.error
        row.item_count = report.items


def store_candidates(session: Session, candidates: Sequence[Candidate], now: datetime) -> None:
    """Insert new articles, update changed ones (content hash), leave the rest alone."""
    for cand in candidates:
        row = session.scalar(select(Article).where(Article.url == cand.url))
        if row is None and cand.guid:
            row = session.scalar(select(Article).where(Article.guid == cand.guid).limit(1))
        if row is None:
            session.add(_new_article(cand, now))
        elif row.content_hash != cand.content_hash:
            _update_article(row, cand, now)


def _new_article(cand: Candidate, now: datetime) -> Article:
    row = Article(url=cand.url, first_seen_at=now)
    _update_article(row, cand, now)
    return row


def _update_article(row: Article, cand: Candidate, now: datetime) -> None:
    row.guid = cand.guid
    row.title = cand.title
    row.summary = cand.summary
    row.author = cand.author
    row.image_url = cand.image_url
    row.section = cand.section
    row.published_at = cand.published_at
    row.date_flag = cand.date_flag
    row.content_hash = cand.content_hash
    row.source_url = cand.source_url
    row.is_pick = cand.is_pick
    row.pick_note = cand.pick_note
    row.updated_at = now


def window_candidates(session: Session, start: datetime, end: datetime) -> list[Candidate]:
    """Articles of the week. An undated article counts from when we first saw it; a
    future-dated one is not trusted until its date has passed."""
    effective = func.coalesce(Article.published_at, Article.first_seen_at)
    rows = session.scalars(
        select(Article)
        .where(effective >= start, effective < end)
        .where((Article.date_flag.is_(None)) | (Article.date_flag != "future"))
        .order_by(Article.id)
    )
    return [_candidate(row) for row in rows]


def _candidate(row: Article) -> Candidate:
    return Candidate(
        url=row.url,
        title=row.title,
        summary=row.summary,
        author=row.author,
        image_url=row.image_url,
        section=row.section,
        published_at=row.published_at or row.first_seen_at,
        guid=row.guid,
        source_url=row.source_url,
        date_flag=row.date_flag,
        is_pick=row.is_pick,
        pick_note=row.pick_note,
        extra={"article_id": str(row.id)},
    )


def _fresh_edition(
    session: Session, settings: Settings, start: datetime, end: datetime, now: datetime
) -> tuple[Edition, bool]:
    existing = session.scalar(select(Edition).where(Edition.cutoff == end))
    if existing is not None and existing.status != DRAFT:
        raise EditionStateError(
            f"edition {existing.id} for this week is already {existing.status}; "
            "it cannot be rebuilt"
        )
    replaced = existing is not None
    if existing is not None:
        session.delete(existing)
        session.flush()
    edition = Edition(
        status=DRAFT,
        window_start=start,
        cutoff=end,
        created_at=now,
        intro=settings.newsletter.intro,
        subject=settings.newsletter.subject.format(
            title=settings.newsletter.title,
            date=date_label(end.astimezone(settings.publication.tz)),
        ),
    )
    session.add(edition)
    return edition, replaced


def _add_items(session: Session, edition: Edition, ranked: Sequence[Ranked]) -> None:
    for position, r in enumerate(ranked, start=1):
        c = r.candidate
        edition.items.append(
            EditionItem(
                article_id=int(c.extra["article_id"]),
                position=position,
                section=c.section or "",
                title=c.title,
                url=c.url,
                summary=c.summary,
                author=c.author,
                image_url=c.image_url,
                published_at=c.published_at,
                score=r.score,
                reasons=list(r.reasons),
            )
        )
    session.flush()


def get_edition(session: Session, edition_id: int | None) -> Edition:
    """The given edition, or the newest one when no id is given."""
    query = select(Edition).options(selectinload(Edition.items))
    if edition_id is None:
        edition = session.scalar(query.order_by(Edition.cutoff.desc(), Edition.id.desc()).limit(1))
        if edition is None:
            raise NotFoundError("no edition yet: run `digest build` first")
        return edition
    edition = session.scalar(query.where(Edition.id == edition_id))
    if edition is None:
        raise NotFoundError(f"no edition with id {edition_id}")
    return edition


def edition_view(edition: Edition) -> EditionView:
    return EditionView(
        id=edition.id,
        subject=edition.subject,
        intro=edition.intro,
        cutoff=edition.cutoff,
        items=tuple(
            ItemView(
                title=i.title,
                url=i.url,
                section=i.section,
                summary=i.summary,
                author=i.author,
                image_url=i.image_url,
                published_at=i.published_at,
            )
            for i in edition.items
        ),
    )
