"""sitemap.xml, sitemap indexes and Google News sitemaps → the pages to read. Pure.

Protocol: https://www.sitemaps.org/protocol.html (urlset/url/loc/lastmod, sitemapindex/sitemap);
Google News: https://developers.google.com/search/docs/crawling-indexing/sitemaps/news-sitemap
(news:news/news:publication_date, news:title); images: image:image/image:loc.

A sitemap never needs a DTD, so a document that declares one (or entities) is refused before
parsing: no entity expansion, no external entities. Gzipped sitemaps (.xml.gz) are inflated with
the same size limit as any response, so a small bomb cannot become gigabytes.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree import ElementTree

from digest.gather.decode import DecodeError, to_utf8_xml
from digest.gather.items import ParseError, parse_date
from digest.gather.links import resolve_link
from digest.gather.sanitize import plain

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    lastmod: datetime | None = None
    news_title: str = ""
    image: str | None = None


@dataclass
class Sitemap:
    entries: list[SitemapEntry] = field(default_factory=list)
    children: list[SitemapEntry] = field(default_factory=list)  # from a sitemap index
    skipped: int = 0  # <loc>s that were not followable URLs


def parse_sitemap(
    body: bytes, url: str, content_type: str = "", max_bytes: int = 10 << 20
) -> Sitemap:
    """Entries (or child sitemaps, for an index); ParseError with the line when malformed."""
    if body.startswith(GZIP_MAGIC):
        body = gunzip(body, max_bytes)
    try:
        xml, _ = to_utf8_xml(body, content_type)
    except DecodeError as exc:
        raise ParseError(str(exc), "undecodable") from None
    if _DTD.search(xml[:4096]):
        raise ParseError("a sitemap must not declare a DTD or entities: refused")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        reason = re.sub(r": line \d+, column \d+$", "", exc.msg)
        raise ParseError(
            f"not well-formed XML at line {line}, column {column + 1}: {reason}"
        ) from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise ParseError(
            f"not a sitemap: the root element is <{kind}>, not <urlset> or <sitemapindex>"
        )
    sitemap = Sitemap()
    child_tag = "url" if kind == "urlset" else "sitemap"
    target = sitemap.entries if kind == "urlset" else sitemap.children
    for element in root:
        if _local(element.tag) != child_tag:
            continue
        entry = _entry(element, url)
        if entry is None:
            sitemap.skipped += 1
        else:
            target.append(entry)
    return sitemap


def _entry(element: ElementTree.Element, base: str) -> SitemapEntry | None:
    url = resolve_link(_text(element, "{*}loc"), base)
    if url is None:
        return None
    when = parse_date(_text(element, ".//{*}news/{*}publication_date")) or parse_date(
        _text(element, "{*}lastmod")
    )
    return SitemapEntry(
        url=url,
        lastmod=when,
        news_title=_text(element, ".//{*}news/{*}title"),
        image=resolve_link(_text(element, ".//{*}image/{*}loc"), url, same_site_only=False),
    )


def _text(element: ElementTree.Element, path: str) -> str:
    found = element.find(path)
    return plain(found.text or "") if found is not None else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """Inflate at most `max_bytes`; more is an error, not a hang or an out-of-memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ParseError(f"corrupt gzip data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise ParseError(f"too large: more than {max_bytes} bytes once decompressed", "too-large")
    return out


def recent(
    entries: list[SitemapEntry], since: datetime | None, limit: int
) -> tuple[list[SitemapEntry], int]:
    """Entries modified since `since` (undated ones too), newest first, at most `limit`.

    Returns them and how many recent entries did not fit the limit.
    """
    fresh = [e for e in entries if since is None or e.lastmod is None or e.lastmod >= since]
    floor = datetime.min.replace(tzinfo=UTC)
    fresh.sort(key=lambda e: e.lastmod or floor, reverse=True)
    return fresh[:limit], max(0, len(fresh) - limit)
