"""Gathered articles and sources in the database: the persistence half of gathering.

- Re-runs are idempotent: an article is found again by its canonical URL (http or https), the
  URLs of copies merged into it, or its GUID (scoped to its feed unless the GUID is a URI).
- A changed article (content hash) is updated in place, never duplicated.
- Conditional-GET validators are stored per source and sent back next time; a source whose kind
  or section changed in the config forgets them, so it is read afresh.
- The week's candidates come from the database, so a source that answered 304 still counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.edition.stored import list_articles as list_articles
from digest.edition.stored import week_filter as week_filter
from digest.gather import PickMark, SourceReport, SourceSpec, Validators
from digest.gather.candidate import Candidate
from digest.gather.identity import canonical_url, deduplicate, guid_key, url_key
from digest.store.models import Article, Source


@dataclass
class StoreStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def with_validators(session: Session, specs: Sequence[SourceSpec]) -> list[SourceSpec]:
    """Each spec with the ETag / Last-Modified stored for it (if its kind and section held)."""
    rows = {
        r.url: r
        for r in session.scalars(select(Source).where(Source.url.in_([s.url for s in specs])))
    }
    out = []
    for spec in specs:
        row = rows.get(spec.url)
        if row is not None and row.kind == spec.kind and row.section == spec.section:
            spec = replace(spec, validators=Validators(row.etag, row.last_modified))
        out.append(spec)
    return out


def record_sources(
    session: Session, reports: Iterable[SourceReport], specs: Sequence[SourceSpec], now: datetime
) -> None:
    by_url = {s.url: s for s in specs}
    for report in reports:
        spec = by_url[report.url]
        row = session.scalar(select(Source).where(Source.url == report.url))
        if row is None:
            row = Source(url=report.url, kind=spec.kind)
            session.add(row)
        row.kind = spec.kind
        row.section = spec.section
        row.last_fetched_at = now
        row.last_status = report.status
        row.last_error = report.error
        if report.status != "not-modified":
            row.item_count = report.items
        if report.ok:  # a failed fetch keeps the validators of the last good one
            row.etag = report.validators.etag
            row.last_modified = report.validators.last_modified


def known_urls(session: Session) -> frozenset[str]:
    """url_key() of every stored article: picks of these need no fetch."""
    return frozenset(url_key(u) for u in session.scalars(select(Article.url)))


def find_article(session: Session, cand: Candidate) -> Article | None:
    urls = [canonical_url(u) for u in (cand.url, *cand.aliases)]
    variants = {v for u in urls for v in (u, _other_scheme(u))}
    row = session.scalar(
        select(Article).where(Article.url.in_(variants)).order_by(Article.id).limit(1)
    )
    if row is not None or not cand.guid:
        return row
    query = select(Article).where(Article.guid == cand.guid)
    if guid_key(cand) != cand.guid:  # a feed-local GUID: only within the same feed
        query = query.where(Article.source_url == cand.source_url)
    return session.scalar(query.order_by(Article.id).limit(1))


def _other_scheme(url: str) -> str:
    if url.startswith("https://"):
        return "http://" + url[8:]
    if url.startswith("http://"):
        return "https://" + url[7:]
    return url


def store_candidates(
    session: Session, candidates: Sequence[Candidate], now: datetime
) -> StoreStats:
    """Insert new articles, update changed ones (content hash), leave the rest alone."""
    stats = StoreStats()
    for cand in candidates:
        row = find_article(session, cand)
        if row is None:
            session.add(_new_article(cand, now))
            session.flush()  # the next candidate may be a copy of this one
            stats.added += 1
        elif row.content_hash != cand.content_hash or row.date_flag != cand.date_flag:
            _update_article(row, cand, now)
            stats.updated += 1
        else:
            stats.unchanged += 1
    return stats


def _new_article(cand: Candidate, now: datetime) -> Article:
    row = Article(url=cand.url, first_seen_at=now, is_pick=False)
    _update_article(row, cand, now)
    return row


def _update_article(row: Article, cand: Candidate, now: datetime) -> None:
    """Content only: pick state belongs to apply_picks, so a feed update never unpicks."""
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
    row.updated_at = now


def apply_picks(
    session: Session, marks: Sequence[PickMark], *, complete: bool, now: datetime
) -> int:
    """Mark the picked articles; when `complete`, unmark articles no longer picked.

    A pick without `added_at` is dated by the first build that sees it (not every build, or it
    would belong to every week).

    Returns how many marks found no stored article (they were not gathered either).
    """
    picked: set[int] = set()
    missing = 0
    for mark in marks:
        row = find_article(session, Candidate(url=mark.url, title=""))
        if row is None:
            missing += 1
            continue
        picked.add(row.id)
        row.is_pick = True
        row.pick_note = mark.note
        row.pick_title = mark.title
        row.pick_section = mark.section
        row.picked_at = mark.picked_at or row.picked_at or now
    if complete:
        for row in session.scalars(select(Article).where(Article.is_pick.is_(True))):
            if row.id not in picked:
                row.is_pick = False
                row.pick_note = row.pick_title = row.pick_section = None
                row.picked_at = None
    return missing


def window_candidates(
    session: Session, start: datetime, end: datetime, similarity: float = 0.8
) -> list[Candidate]:
    """The week's articles as candidates, near-duplicates stored in earlier runs merged."""
    rows = session.scalars(select(Article).where(week_filter(start, end)).order_by(Article.id))
    return deduplicate((as_candidate(row) for row in rows), similarity)


def as_candidate(row: Article) -> Candidate:
    return Candidate(
        url=row.url,
        title=row.pick_title or row.title,
        summary=row.summary,
        author=row.author,
        image_url=row.image_url,
        section=row.pick_section or row.section,
        published_at=row.published_at or row.first_seen_at,
        guid=row.guid,
        source_url=row.source_url,
        date_flag=row.date_flag,
        is_pick=row.is_pick,
        pick_note=row.pick_note,
        extra={"article_id": str(row.id)},
    )
