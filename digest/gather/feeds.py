"""RSS 0.9x/1.0/2.0 and Atom (feedparser) and JSON Feed 1.0/1.1 → candidates.

Pure: bytes and `now` in, sanitised candidates out.
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.candidate import Candidate
from digest.sanitize import excerpt, safe_url, to_text

_IMG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"'][^>]*>", re.I)
_TINY = re.compile(r"\b(width|height)\s*=\s*[\"']?1[\"'\s/>]", re.I)


class ParseError(Exception):
    """The bytes are not a feed we can read; the message says where and why."""


def parse_feed(
    body: bytes, *, url: str, now: datetime, section: str | None = None, excerpt_words: int = 45
) -> list[Candidate]:
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_json_feed(body, url=url, now=now, section=section, words=excerpt_words)
    return _parse_xml_feed(body, url=url, now=now, section=section, words=excerpt_words)


def _parse_xml_feed(
    body: bytes, *, url: str, now: datetime, section: str | None, words: int
) -> list[Candidate]:
    parsed = feedparser.parse(body, response_headers={"content-location": url})
    if parsed.bozo and not parsed.entries:
        exc = parsed.get("bozo_exception")
        line = getattr(exc, "getLineNumber", lambda: None)()
        where = f" at line {line}" if line else ""
        raise ParseError(f"not a readable feed{where}: {exc}")
    if not parsed.version and not parsed.entries:
        raise ParseError("not a feed: no RSS, Atom or JSON Feed document found")
    out = []
    for entry in parsed.entries:
        candidate = _from_entry(entry, url=url, now=now, section=section, words=words)
        if candidate is not None:
            out.append(candidate)
    return out


def _from_entry(
    entry: Any, *, url: str, now: datetime, section: str | None, words: int
) -> Candidate | None:
    link = safe_url(entry.get("link"), base=url)
    if link is None:
        return None
    content = _entry_html(entry)
    published, flag = _date(entry.get("published_parsed") or entry.get("updated_parsed"), now)
    return Candidate(
        url=link,
        title=to_text(entry.get("title", "")) or link,
        summary=excerpt(entry.get("summary") or content, words),
        author=to_text(entry.get("author", "")) or None,
        image_url=_entry_image(entry, content, base=link),
        section=section,
        published_at=published,
        date_flag=flag,
        guid=entry.get("id") or None,
        source_url=url,
    )


def _entry_html(entry: Any) -> str:
    for content in entry.get("content", []) or []:
        if content.get("value"):
            return str(content["value"])
    return str(entry.get("summary", ""))


def _entry_image(entry: Any, content: str, *, base: str) -> str | None:
    urls: list[str | None] = []
    urls += [m.get("url") for m in entry.get("media_content", []) if _is_image(m)]
    urls += [m.get("url") for m in entry.get("media_thumbnail", [])]
    urls += [e.get("href") for e in entry.get("enclosures", []) if _is_image(e)]
    urls += [
        lk.get("href")
        for lk in entry.get("links", [])
        if lk.get("rel") == "enclosure" and _is_image(lk)
    ]
    urls += [m.group(1) for m in _IMG.finditer(content) if not _TINY.search(m.group(0))]
    for candidate in urls:
        safe = safe_url(candidate, base=base)
        if safe:
            return safe
    return None


def _is_image(media: Any) -> bool:
    kind = str(media.get("type") or media.get("medium") or "image")
    return kind.startswith("image")


def _date(struct: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if not struct:
        return None, "missing"
    try:
        value = datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None, "missing"
    return (value, "future") if value > now else (value, None)


def _parse_json_feed(
    body: bytes, *, url: str, now: datetime, section: str | None, words: int
) -> list[Candidate]:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"JSON Feed is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(doc, dict) or "jsonfeed.org/version" not in str(doc.get("version", "")):
        raise ParseError("not a JSON Feed: missing https://jsonfeed.org/version/1.x version")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items list")
    base = _str(doc.get("home_page_url")) or url
    out = []
    for item in items:
        if isinstance(item, dict):
            candidate = _from_json_item(
                item, base=base, url=url, now=now, section=section, words=words
            )
            if candidate is not None:
                out.append(candidate)
    return out


def _from_json_item(
    item: dict[str, Any], *, base: str, url: str, now: datetime, section: str | None, words: int
) -> Candidate | None:
    link = safe_url(_str(item.get("url")) or _str(item.get("external_url")), base=base)
    if link is None:
        return None
    content = _str(item.get("content_html")) or _str(item.get("content_text"))
    published, flag = _json_date(_str(item.get("date_published") or item.get("date_modified")), now)
    authors = item.get("authors") or (
        [item["author"]] if isinstance(item.get("author"), dict) else []
    )
    names = [to_text(_str(a.get("name"))) for a in authors if isinstance(a, dict)]
    return Candidate(
        url=link,
        title=to_text(_str(item.get("title"))) or link,
        summary=excerpt(_str(item.get("summary")) or content, words),
        author=", ".join(n for n in names if n) or None,
        image_url=safe_url(_str(item.get("image")) or _str(item.get("banner_image")), base=link)
        or _first_img(content, base=link),
        section=section,
        published_at=published,
        date_flag=flag,
        guid=_str(item.get("id")) or None,
        source_url=url,
    )


def _first_img(content: str, *, base: str) -> str | None:
    for m in _IMG.finditer(content):
        if not _TINY.search(m.group(0)):
            return safe_url(m.group(1), base=base)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _json_date(value: str, now: datetime) -> tuple[datetime | None, str | None]:
    if not value:
        return None, "missing"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None, "missing"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return (parsed, "future") if parsed > now else (parsed, None)
