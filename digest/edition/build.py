"""Building an edition: gather → store candidates → rank the week → persist. The one place an
edition is written; it either happens completely or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.articles import (
    StoreStats,
    apply_picks,
    known_urls,
    record_sources,
    store_candidates,
    window_candidates,
    with_validators,
)
from digest.edition.options import edition_window, gather_options, rank_rules, source_specs
from digest.errors import EditionStateError, EmptyWeekError, GatherError
from digest.gather import Fetcher, SourceReport, gather
from digest.rank import Ranked, rank
from digest.render.email import date_label
from digest.store.db import transaction
from digest.store.models import DRAFT, Edition, EditionItem


@dataclass
class BuildReport:
    edition: Edition
    ranked: list[Ranked]
    sources: list[SourceReport]
    candidates: int
    in_window: int
    replaced_draft: bool = False
    warnings: list[str] = field(default_factory=list)
    stored: StoreStats = field(default_factory=StoreStats)


def build_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    fetcher: Fetcher | None = None,
) -> BuildReport:
    specs = source_specs(settings)
    if not specs:
        raise GatherError("no [[sources]] configured: nothing to build an edition from")
    start, end = edition_window(settings, now)
    with factory() as session:
        specs = with_validators(session, specs)
        known = known_urls(session)
        start = max(start, previous_cutoff(session, end) or start)
    gathered = gather(
        specs, now=now, fetcher=fetcher, options=gather_options(settings, start, known)
    )
    if not any(r.ok for r in gathered.reports):
        reasons = "; ".join(f"{r.url}: {r.error}" for r in gathered.reports)
        raise GatherError(f"no source could be read ({reasons})")
    with transaction(factory) as session:
        record_sources(session, gathered.reports, specs, now)
        stored = store_candidates(session, gathered.candidates, now)
        apply_picks(session, gathered.picks, complete=gathered.picks_complete, now=now)
        session.flush()
        published = published_article_ids(session)
        week = [
            c
            for c in window_candidates(session, start, end, settings.gather.title_similarity)
            if int(c.extra["article_id"]) not in published
        ]
        ranked = rank(week, now, rank_rules(settings))
        if len(ranked) < settings.newsletter.min_items:
            tz = settings.publication.tz
            raise EmptyWeekError(
                f"only {len(ranked)} article(s) between {start.astimezone(tz):%Y-%m-%d %H:%M} "
                f"and {end.astimezone(tz):%Y-%m-%d %H:%M} {settings.publication.timezone} "
                f"(min_items is {settings.newsletter.min_items}); no edition was built"
            )
        edition, replaced = _fresh_edition(session, settings, start, end, now)
        _add_items(session, edition, ranked)
    return BuildReport(
        edition=edition,
        ranked=ranked,
        sources=gathered.reports,
        candidates=len(gathered.candidates),
        in_window=len(week),
        replaced_draft=replaced,
        warnings=source_warnings(gathered.reports),
        stored=stored,
    )


def previous_cutoff(session: Session, end: datetime) -> datetime | None:
    """The cut-off of the newest edition already approved or sent before `end`.

    A week starts no earlier than that: an edition carries what is new since the last one, so a
    second run of the weekly job (cron firing twice, a retry) finds nothing and sends nothing.
    """
    return session.scalar(
        select(func.max(Edition.cutoff)).where(Edition.status != DRAFT, Edition.cutoff < end)
    )


def published_article_ids(session: Session) -> set[int]:
    """Articles that went out (or are going out) in an edition: never repeated in another."""
    query = (
        select(EditionItem.article_id)
        .join(Edition, Edition.id == EditionItem.edition_id)
        .where(Edition.status != DRAFT)
    )
    return set(session.scalars(query))


def source_warnings(reports: Sequence[SourceReport]) -> list[str]:
    """One line per failed source (URL and reason), then what was odd about the others."""
    failed = [f"source failed: {r.url}: {r.error}" for r in reports if not r.ok]
    odd = [f"{r.label}: {w}" for r in reports if r.ok for w in r.warnings]
    return failed + odd


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
