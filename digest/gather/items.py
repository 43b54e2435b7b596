"""What every parser shares: the context of one source, dates, sections and the final candidate.

Each parser (feeds, JSON Feed, article pages) extracts raw strings its own way, then calls
`make_candidate`, so that caps, date flags and section rules are the same for every kind of source.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from digest.gather.candidate import Candidate
from digest.gather.fastitems import Decline
from digest.gather.fastitems import parse_date as feedparser_date
from digest.gather.sanitize import clip, excerpt, plain, safe_url

MAX_TITLE = 300
MAX_AUTHOR = 200
MAX_GUID = 500


class ParseError(Exception):
    """The bytes are not a document we can read; the message says where and why."""

    def __init__(self, message: str, kind: str = "parse") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ParseContext:
    """One source as the parsers see it. `url` is the document's final URL (the base)."""

    url: str
    now: datetime
    source_url: str = ""
    section: str | None = None
    sections: tuple[str, ...] = ()
    excerpt_words: int = 45
    max_items: int = 500

    def at(self, url: str) -> ParseContext:
        """The same source, reading another document (an article page of a listing)."""
        return ParseContext(
            url=url,
            now=self.now,
            source_url=self.source_url or self.url,
            section=self.section,
            sections=self.sections,
            excerpt_words=self.excerpt_words,
            max_items=self.max_items,
        )


@dataclass
class Parsed:
    """A parser's result: candidates, links to follow (sitemaps, listings) and what was odd."""

    candidates: list[Candidate] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RawItem:
    """Strings as a parser found them, before the shared rules are applied."""

    link: str | None
    title: str = ""  # plain text already
    summary: str = ""  # HTML or plain text, see summary_is_html
    summary_is_html: bool = True
    author: str = ""
    image: str | None = None
    published: datetime | None = None
    raw_date: str = ""
    guid: str = ""
    categories: tuple[str, ...] = ()
    section: str = ""


def make_candidate(item: RawItem, ctx: ParseContext, skipped: list[str]) -> Candidate | None:
    """The shared rules: an http(s) link is required; text is capped; dates are flagged."""
    link = safe_url(item.link, base=ctx.url)
    if link is None:
        reason = "no link" if not item.link else f"unusable link {clip(plain(item.link), 80)!r}"
        skipped.append(reason)
        return None
    published, flag = date_flag(item.published, ctx.now)
    summary = excerpt(item.summary, ctx.excerpt_words, is_html=item.summary_is_html)
    return Candidate(
        url=link,
        title=clip(plain(item.title), MAX_TITLE) or _title_from_url(link),
        summary=summary,
        author=clip(plain(item.author), MAX_AUTHOR) or None,
        image_url=safe_url(item.image, base=link) if item.image else None,
        section=ctx.section or match_section((item.section, *item.categories), ctx.sections),
        published_at=published,
        date_flag=flag,
        guid=_guid(item.guid),
        source_url=ctx.source_url or ctx.url,
    )


def _guid(value: str) -> str | None:
    guid = plain(value)
    if len(guid) > MAX_GUID:
        guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return guid or None


def _title_from_url(url: str) -> str:
    """An item without a title still has a readable name: its URL's last path segment."""
    slug = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    words = slug.replace("-", " ").replace("_", " ").strip()
    return clip(words[:1].upper() + words[1:], MAX_TITLE) if words else url[:MAX_TITLE]


def match_section(names: tuple[str, ...], sections: tuple[str, ...]) -> str | None:
    """The first of `names` that is one of the newsletter's sections (case-insensitively)."""
    if not sections:
        return None
    known = {s.casefold(): s for s in sections}
    for name in names:
        hit = known.get(plain(name or "").casefold())
        if hit:
            return hit
    return None


def date_flag(value: datetime | None, now: datetime) -> tuple[datetime | None, str | None]:
    """ "missing" when there is no usable date; "future" when it is after `now` (not trusted)."""
    if value is None:
        return None, "missing"
    return (value, "future") if value > now else (value, None)


def from_struct(struct: Any) -> datetime | None:
    """feedparser's UTC struct_time → aware datetime (None when absent or absurd)."""
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def parse_date(text: str | None) -> datetime | None:
    """ISO 8601 / RFC 3339 first, then RFC 822, then everything feedparser knows. UTC out."""
    text = plain(text or "")
    if not text or len(text) > 100:
        return None
    value: datetime | None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = _rfc822(text)
    if value is None:
        return from_struct(_feedparser_date(text))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _rfc822(text: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _feedparser_date(text: str) -> time.struct_time | None:
    """feedparser's reading of a date, through its public API (fastitems.parse_date)."""
    try:
        return feedparser_date(text)
    except (Decline, ValueError, OverflowError, TypeError, IndexError):
        return None


def newest_first(candidates: list[Candidate], limit: int) -> tuple[list[Candidate], int]:
    """The `limit` newest candidates in their original order, and how many were dropped.

    Undated items count as newest: they are dated when first seen, which is now.
    """
    if len(candidates) <= limit:
        return candidates, 0
    ceiling = datetime.max.replace(tzinfo=UTC)
    ranked = sorted(
        range(len(candidates)),
        key=lambda i: candidates[i].published_at or ceiling,
        reverse=True,
    )
    keep = set(ranked[:limit])
    return [c for i, c in enumerate(candidates) if i in keep], len(candidates) - limit


def summarise_skips(skipped: list[str], what: str = "item") -> list[str]:
    """'3 items skipped: no link' instead of three identical lines."""
    counts: dict[str, int] = {}
    for reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    return [f"{n} {what}{'s' if n != 1 else ''} skipped: {reason}" for reason, n in counts.items()]


def undated_note(bad_dates: list[str]) -> list[str]:
    """Items kept despite a date nobody can read: flagged "missing", first seen stands in."""
    if not bad_dates:
        return []
    n = len(bad_dates)
    return [
        f"{n} item{'s' if n != 1 else ''} with an unparseable date (e.g. {bad_dates[0]!r}): "
        "kept, flagged, dated when first seen"
    ]
