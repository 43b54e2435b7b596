"""The values gathering passes around: what to read (SourceSpec, GatherOptions), what came of it
(SourceReport, PickMark, GatherResult). Plain frozen data, no behaviour worth testing alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from digest.gather.candidate import Candidate
from digest.gather.fetch import NO_VALIDATORS, Limits, Validators

OK = "ok"
NOT_MODIFIED = "not-modified"
ERROR = "error"


@dataclass(frozen=True)
class SourceSpec:
    """What gathering needs to know about one source (resolved from Settings)."""

    url: str
    kind: str = "feed"
    section: str | None = None
    name: str | None = None
    link_pattern: str | None = None
    max_pages: int | None = None
    timeout_s: float | None = None
    validators: Validators = NO_VALIDATORS

    @property
    def label(self) -> str:
        return self.name or self.url


@dataclass(frozen=True)
class GatherOptions:
    limits: Limits = field(default_factory=Limits)
    excerpt_words: int = 45
    sections: tuple[str, ...] = ()
    max_items: int = 500
    max_pages: int = 30
    similarity: float = 0.8
    conditional_get: bool = True
    # Sitemap entries last modified before this are not fetched (the start of the week).
    since: datetime | None = None
    # url_key()s of articles already stored: a pick of one of them needs no fetch.
    known_urls: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SourceReport:
    url: str
    ok: bool
    items: int = 0
    error: str | None = None
    newest: datetime | None = None
    kind: str = "feed"
    name: str | None = None
    status: str = OK  # OK, NOT_MODIFIED or ERROR
    error_kind: str | None = None  # http, timeout, too-large, redirects, connection, parse, ...
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = ()
    validators: Validators = NO_VALIDATORS
    pages: int = 0  # article pages fetched (sitemap, listing, picks)

    @property
    def label(self) -> str:
        return self.name or self.url


@dataclass(frozen=True)
class PickMark:
    """An editor's pick, resolved to the article's canonical URL."""

    url: str
    note: str | None = None
    title: str | None = None
    section: str | None = None
    picked_at: datetime | None = None


@dataclass
class GatherResult:
    candidates: list[Candidate] = field(default_factory=list)
    reports: list[SourceReport] = field(default_factory=list)
    picks: list[PickMark] = field(default_factory=list)
    # Every picks source was read and every pick resolved: articles no longer picked may be
    # unmarked. When false, the previous marks are kept rather than dropped by a passing outage.
    picks_complete: bool = True

    @property
    def failures(self) -> list[SourceReport]:
        return [r for r in self.reports if not r.ok]


@dataclass
class Outcome:
    """One source's contribution."""

    report: SourceReport
    candidates: list[Candidate] = field(default_factory=list)
    picks: list[PickMark] = field(default_factory=list)
    picks_complete: bool = True
