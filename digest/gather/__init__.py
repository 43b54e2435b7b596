"""Gathering: every configured source → one deduplicated list of sanitised candidates.

A failing source is reported and skipped; the others still make the edition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from digest.candidate import Candidate
from digest.gather.feeds import ParseError, parse_feed
from digest.gather.fetch import Fetched, FetchError, fetch
from digest.gather.identity import deduplicate
from digest.gather.items import ParseContext

Fetcher = Callable[[str], Fetched]


@dataclass(frozen=True)
class SourceSpec:
    """What gathering needs to know about one source (resolved from Settings)."""

    url: str
    kind: str = "feed"
    section: str | None = None


@dataclass(frozen=True)
class SourceReport:
    url: str
    ok: bool
    items: int = 0
    error: str | None = None
    newest: datetime | None = None


@dataclass
class GatherResult:
    candidates: list[Candidate] = field(default_factory=list)
    reports: list[SourceReport] = field(default_factory=list)

    @property
    def failures(self) -> list[SourceReport]:
        return [r for r in self.reports if not r.ok]


def gather(
    sources: Sequence[SourceSpec],
    *,
    now: datetime,
    fetcher: Fetcher = fetch,
    excerpt_words: int = 45,
    concurrency: int = 8,
) -> GatherResult:
    def one(spec: SourceSpec) -> tuple[list[Candidate], SourceReport]:
        try:
            fetched = fetcher(spec.url)
            items = parse_feed(
                fetched.body,
                ParseContext(
                    url=fetched.url, now=now, section=spec.section, excerpt_words=excerpt_words
                ),
                fetched.content_type,
            ).candidates
        except (FetchError, ParseError) as exc:
            return [], SourceReport(url=spec.url, ok=False, error=str(exc))
        dates = [c.published_at for c in items if c.published_at]
        return items, SourceReport(
            url=spec.url, ok=True, items=len(items), newest=max(dates) if dates else None
        )

    result = GatherResult()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(sources)))) as pool:
        for items, report in pool.map(one, sources):
            result.candidates.extend(items)
            result.reports.append(report)
    result.candidates = deduplicate(result.candidates)
    return result


def in_window(candidate: Candidate, start: datetime, end: datetime) -> bool:
    """Published in [start, end). Undated and future-dated items are not trusted to be."""
    if candidate.published_at is None or candidate.date_flag == "future":
        return False
    return start <= candidate.published_at < end
