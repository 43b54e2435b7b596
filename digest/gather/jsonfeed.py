"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) → candidates. Pure.

Real JSON Feeds bend the spec: numeric ids, a 1.0 `author` object in a 1.1 feed, items without
titles (micro-blogs), relative URLs, strings where lists belong. Each item is read for what it
has; an item that is not an object, or has no usable URL, is skipped and counted in the report.
"""

from __future__ import annotations

import json
from typing import Any

from digest.gather.decode import DecodeError, decode
from digest.gather.items import (
    ParseContext,
    Parsed,
    ParseError,
    RawItem,
    make_candidate,
    newest_first,
    parse_date,
    summarise_skips,
    undated_note,
)
from digest.gather.sanitize import excerpt, first_image, safe_url

UNTITLED_WORDS = 12


def looks_like_json(body: bytes, content_type: str = "") -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") or "json" in content_type.lower()


def parse_json_feed(body: bytes, ctx: ParseContext, content_type: str = "") -> Parsed:
    doc, encoding_note = _load(body, content_type)
    if not isinstance(doc, dict) or "jsonfeed.org/version/1" not in _str(doc.get("version")):
        raise ParseError('not a JSON Feed: no "version": "https://jsonfeed.org/version/1.x"')
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError('not a JSON Feed: "items" is missing or not a list')
    base = safe_url(_str(doc.get("home_page_url")), base=ctx.url) or ctx.url
    feed_authors = _authors(doc)
    result = Parsed(warnings=[encoding_note] if encoding_note else [])
    skipped: list[str] = []
    bad_dates: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            skipped.append("not a JSON object")
            continue
        raw = _raw(item, base, feed_authors, ctx, bad_dates)
        candidate = make_candidate(raw, ctx, skipped)
        if candidate is not None:
            result.candidates.append(candidate)
    result.candidates, dropped = newest_first(result.candidates, ctx.max_items)
    if dropped:
        result.warnings.append(
            f"the feed has {len(result.candidates) + dropped} items: kept the newest "
            f"{ctx.max_items} ([gather] max_items_per_source)"
        )
    result.warnings += summarise_skips(skipped) + undated_note(bad_dates)
    return result


def _load(body: bytes, content_type: str) -> tuple[Any, str | None]:
    try:
        decoded = decode(body, content_type, markup="json")
    except DecodeError as exc:
        raise ParseError(str(exc), "undecodable") from None
    try:
        # strict=False: a raw tab or newline inside a string is a common, harmless mistake.
        return json.loads(decoded.text, strict=False), decoded.warning
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None


def _raw(
    item: dict[str, Any], base: str, feed_authors: str, ctx: ParseContext, bad_dates: list[str]
) -> RawItem:
    ident = _str(item.get("id"))
    link = _str(item.get("url")) or _str(item.get("external_url"))
    if not link and ident.lower().startswith(("http://", "https://")):
        link = ident
    content_html = _str(item.get("content_html"))
    content_text = _str(item.get("content_text"))
    summary, is_html = _summary(item, content_html, content_text)
    raw_date = _str(item.get("date_published")) or _str(item.get("date_modified"))
    published = parse_date(raw_date) if raw_date else None
    if raw_date and published is None:
        bad_dates.append(raw_date[:40])
    item_url = safe_url(link, base=base)
    image = _str(item.get("image")) or _str(item.get("banner_image"))
    return RawItem(
        link=item_url or link or None,
        title=_str(item.get("title")) or _untitled(content_text, content_html),
        summary=summary,
        summary_is_html=is_html,
        author=_authors(item) or feed_authors,
        image=safe_url(image, base=item_url or base) or first_image(content_html, item_url or base),
        published=published,
        raw_date=raw_date,
        guid=ident,
        categories=tuple(_str(t) for t in item.get("tags") or [] if isinstance(t, str)),
    )


def _summary(item: dict[str, Any], content_html: str, content_text: str) -> tuple[str, bool]:
    """JSON Feed's `summary` and `content_text` are plain text; only `content_html` is HTML."""
    summary = _str(item.get("summary"))
    if summary:
        return summary, False
    if content_html:
        return content_html, True
    return content_text, False


def _untitled(content_text: str, content_html: str) -> str:
    """A micro-blog post has no title: its first words stand in."""
    if content_text:
        return excerpt(content_text, UNTITLED_WORDS, is_html=False)
    return excerpt(content_html, UNTITLED_WORDS) if content_html else ""


def _authors(obj: dict[str, Any]) -> str:
    """1.1's `authors` list, or 1.0's single `author` object."""
    authors = obj.get("authors")
    if not isinstance(authors, list):
        single = obj.get("author")
        authors = [single] if isinstance(single, dict) else []
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict)]
    return ", ".join(n for n in names if n)


def _str(value: Any) -> str:
    """Strings as they are; numbers as text (numeric ids are common); anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""
