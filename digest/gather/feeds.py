"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 (feedparser) and JSON Feed 1.0/1.1 → candidates.

Pure: bytes and a ParseContext in, sanitised candidates out. The bytes are re-encoded as UTF-8
first (digest.gather.decode), so feedparser never has to guess an encoding. feedparser's own HTML
sanitiser and relative-URI rewriting are switched off: nh3 sanitises everything downstream and
links are made absolute here, which also makes parsing about twice as fast.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax import SAXParseException

import feedparser

from digest.gather.candidate import Candidate
from digest.gather.decode import DecodeError, to_utf8_xml
from digest.gather.fastfeed import read_fast
from digest.gather.identity import canonical_url
from digest.gather.items import (
    ParseContext,
    Parsed,
    ParseError,
    RawItem,
    from_struct,
    make_candidate,
    newest_first,
    parse_date,
    summarise_skips,
    undated_note,
)
from digest.gather.jsonfeed import looks_like_json, parse_json_feed
from digest.gather.sanitize import first_image, is_pixel_size, plain, safe_url, to_text

# "editors@meridianreview.example (Grace Mwangi)": RSS 2.0's author form. feedparser's
# author_detail splits it wrongly when the TLD has more than four letters, so read the raw string.
_EMAIL_AND_NAME = re.compile(r"^\s*(\S+@\S+)\s*\((.+)\)\s*$")
_EMAIL_ONLY = re.compile(r"^\s*\S+@\S+\s*$")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_HTML_TYPES = ("text/html", "application/xhtml+xml", "html")


def parse_feed(
    body: bytes, ctx: ParseContext, content_type: str = "", *, fast: bool = True
) -> Parsed:
    """A feed's items; raises ParseError (with the line for XML) when it is not a feed at all.

    Well-formed RSS 2.0 and Atom 1.0 take the fast path (digest.gather.fastfeed), which gives
    feedparser's entries without feedparser's cost; `fast=False` forces feedparser (the tests
    compare the two).
    """
    if looks_like_json(body, content_type):
        return parse_json_feed(body, ctx, content_type)
    try:
        xml, encoding_note = to_utf8_xml(body, content_type)
    except DecodeError as exc:
        raise ParseError(str(exc), "undecodable") from None
    if _HTML_START.match(xml[:2048]):
        raise ParseError(
            "not a feed: this is an HTML page (use kind = 'listing' for a section page or "
            "kind = 'page' for one article)"
        )
    result = Parsed(warnings=[encoding_note] if encoding_note else [])
    read = read_fast(xml) if fast else None
    version, entries = read or _feedparser(xml, result)
    skipped: list[str] = []
    bad_dates: list[str] = []
    for entry in entries:
        raw = _raw(entry, ctx, version, bad_dates)
        candidate = make_candidate(raw, ctx, skipped)
        if candidate is not None:
            result.candidates.append(candidate)
    result.candidates = _distinct_guids(result.candidates, result.warnings)
    result.candidates, dropped = newest_first(result.candidates, ctx.max_items)
    if dropped:
        result.warnings.append(
            f"the feed has {len(result.candidates) + dropped} items: kept the newest "
            f"{ctx.max_items} ([gather] max_items_per_source)"
        )
    result.warnings += summarise_skips(skipped) + undated_note(bad_dates)
    return result


def _feedparser(xml: bytes, result: Parsed) -> tuple[str, list[Any]]:
    """feedparser's version string and entries, for everything the fast path declines."""
    parsed = feedparser.parse(
        xml,
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    _check(parsed, result)
    return str(parsed.get("version", "") or ""), parsed.get("entries", [])


def _check(parsed: Any, result: Parsed) -> None:
    """Malformed XML is fatal only when nothing could be read; otherwise it is a warning."""
    exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
    where = ""
    if isinstance(exc, SAXParseException):
        where = f"at line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
        message = f"not well-formed XML {where}{exc.getMessage()}"
    else:
        message = f"not well-formed XML: {exc}" if exc else ""
    if not parsed.get("entries", []) and (exc is not None or not parsed.get("version", "")):
        if message:
            raise ParseError(message)
        raise ParseError("not a feed: no RSS, Atom or JSON Feed document found")
    if message:
        result.warnings.append(f"{message} (read what could be read with the lenient parser)")


def _raw(entry: Any, ctx: ParseContext, version: str, bad_dates: list[str]) -> RawItem:
    content, content_base = _content(entry)
    summary_detail = entry.get("summary_detail") or {}
    summary = entry.get("summary") or ""
    is_html = summary_detail.get("type", "text/html") in _HTML_TYPES or not summary
    if not summary:
        summary, is_html = content, True
    raw_date = entry.get("published") or entry.get("updated") or ""
    published = from_struct(entry.get("published_parsed") or entry.get("updated_parsed"))
    if published is None and raw_date:
        published = parse_date(raw_date)
        if published is None:
            bad_dates.append(plain(raw_date)[:40])
    link = _origin_link(entry, ctx) or entry.get("link") or _guid_link(entry)
    base = content_base or safe_url(link, base=ctx.url) or ctx.url
    return RawItem(
        link=link,
        title=_title(entry, version),
        summary=summary,
        summary_is_html=is_html,
        author=_author(entry),
        image=_image(entry, content, base),
        published=published,
        raw_date=raw_date,
        guid=str(entry.get("id") or ""),
        categories=tuple(str(t.get("term") or "") for t in entry.get("tags") or []),
    )


def _title(entry: Any, version: str) -> str:
    """Atom says whether a title is text or HTML; RSS does not, and feeds put escaped markup
    in titles, so an RSS title is read as HTML (a literal "x < y" survives that)."""
    title = str(entry.get("title") or "")
    kind = (entry.get("title_detail") or {}).get("type", "text/plain")
    if version.startswith("atom") and kind not in _HTML_TYPES:
        return plain(title)
    return to_text(title)


def _content(entry: Any) -> tuple[str, str | None]:
    """The richest content body (HTML preferred) and the xml:base it was written against."""
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    contents.sort(key=lambda c: c.get("type", "") not in _HTML_TYPES)
    if contents:
        return str(contents[0]["value"]), contents[0].get("base") or None
    return "", None


def _origin_link(entry: Any, ctx: ParseContext) -> str | None:
    """FeedBurner (and feeds proxied like it) link every item through a redirect of their own
    (feeds.feedburner.com/~r/...) and keep the article's address in feedburner:origLink: that
    is the article, the one other sources and editors' picks name."""
    origin = entry.get("feedburner_origlink")
    return origin if origin and safe_url(origin, base=ctx.url) else None


def _guid_link(entry: Any) -> str | None:
    guid = str(entry.get("id") or "")
    return guid if guid.lower().startswith(("http://", "https://")) else None


def _author(entry: Any) -> str:
    """The byline: the raw author string when there is one author, else every author's name."""
    raw = str(entry.get("author") or "")
    authors = entry.get("authors") or []
    if raw and len(authors) <= 1:
        return _author_name(raw)
    return ", ".join(n for n in (_detail_name(a) for a in authors) if n)


def _detail_name(author: Any) -> str:
    name, email = str(author.get("name") or ""), str(author.get("email") or "")
    if email and _EMAIL_ONLY.match(email + name):
        return ""  # feedparser split a bare address ("a@news.example") into email and "name"
    return _author_name(name)


def _author_name(raw: str) -> str:
    match = _EMAIL_AND_NAME.match(raw)
    if match:
        return match.group(2).strip()
    if _EMAIL_ONLY.match(raw):
        return ""  # an address alone is not a byline, and not ours to publish
    return raw


def _image(entry: Any, content: str, base: str) -> str | None:
    """media:content, media:thumbnail, an image enclosure, then the content's first <img>."""
    urls: list[str] = []
    for media in entry.get("media_content") or []:
        if _is_image(media) and not is_pixel_size(media.get("width"), media.get("height")):
            urls.append(media.get("url") or "")
    for thumb in entry.get("media_thumbnail") or []:
        if not is_pixel_size(thumb.get("width"), thumb.get("height")):
            urls.append(thumb.get("url") or "")
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and _is_image(link):
            urls.append(link.get("href") or "")
    for url in urls:
        safe = safe_url(url, base=base)
        if safe:
            return safe
    html = content or str(entry.get("summary") or "")
    return first_image(html, base) if html else None


def _is_image(media: Any) -> bool:
    kind = str(media.get("type") or media.get("medium") or "image")
    return kind.startswith("image")


def _distinct_guids(candidates: list[Candidate], warnings: list[str]) -> list[Candidate]:
    """A GUID shared by items with different links identifies nothing: ignore it for them."""
    links: dict[str, set[str]] = {}
    for c in candidates:
        if c.guid:
            links.setdefault(c.guid, set()).add(canonical_url(c.url))
    shared = {guid for guid, urls in links.items() if len(urls) > 1}
    for guid in sorted(shared):
        warnings.append(
            f"GUID {guid[:60]!r} is used by {len(links[guid])} items with different links: "
            "ignored for them"
        )
    return [c.with_(guid=None) if c.guid in shared else c for c in candidates]
