"""Article pages → one candidate each: metadata from JSON-LD, OpenGraph and meta tags. Pure.

Why selectolax (lexbor) and these explicit rules rather than trafilatura's metadata: we need the
metadata only, never the body text; lexbor is an HTML5-conformant C parser that copes with any tag
soup in microseconds; the precedence below is ours to read, test and explain in a report, where
trafilatura's heuristics (and its lxml/htmldate/courlan dependency tree) decide for us.

Precedence, first found wins (JSON-LD means the first node whose @type is an Article type):

- title: JSON-LD headline, name; og:title; twitter:title; <title>; the first <h1>.
- canonical URL: <link rel=canonical>; og:url; JSON-LD url / mainEntityOfPage; the fetched URL.
- description: JSON-LD description; og:description; twitter:description; meta description.
- image: og:image (unless declared 1x1); twitter:image; JSON-LD image (URL, list or
  ImageObject); the first real <img> inside <article> or <main>.
- author: JSON-LD author (Person names, lists); meta author; article:author, byl,
  parsely-author, dc.creator (never a profile URL).
- published: JSON-LD datePublished; article:published_time, date, pubdate, dc.date and other
  common meta names; the first <time datetime> in the article.
- section: JSON-LD articleSection; article:section; parsely-section.

OpenGraph comes before JSON-LD for the image (og:image is the picture the site chose for sharing).
A canonical URL on another site is ignored (a page cannot claim another site's article).
Values from meta attributes were decoded by the HTML parser (plain text); JSON-LD strings were not
(they sit in a <script>), so they are decoded as HTML once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from digest.gather.decode import DecodeError, decode
from digest.gather.items import (
    ParseContext,
    Parsed,
    ParseError,
    RawItem,
    make_candidate,
    parse_date,
)
from digest.gather.links import is_local, resolve_link
from digest.gather.sanitize import first_image, plain, safe_url, to_text

ARTICLE_TYPES = ("article", "blogposting", "report", "liveblogposting", "socialmediaposting")
DATE_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "dcterms.issued",
    "sailthru.date",
    "parsely-pub-date",
)
MAX_JSONLD = 200_000


@dataclass
class PageMeta:
    title: str = ""
    canonical: str | None = None
    description: str = ""
    image: str | None = None
    author: str = ""
    published: str = ""
    section: str = ""


def parse_page(body: bytes, ctx: ParseContext, content_type: str = "") -> Parsed:
    """One article page's candidate; ParseError when it is not an HTML article page."""
    tree, warning = html_tree(body, content_type)
    meta = extract(tree, ctx.url)
    result = Parsed(warnings=[warning] if warning else [])
    if not meta.title:
        raise ParseError("no title in JSON-LD, OpenGraph, <title> or <h1>: not an article page")
    url = _canonical(meta.canonical, ctx.url, result.warnings)
    raw = RawItem(
        link=url,
        title=meta.title,
        summary=meta.description,
        summary_is_html=False,
        author=meta.author,
        image=meta.image,
        published=parse_date(meta.published),
        raw_date=meta.published,
        section=meta.section,
    )
    if meta.published and raw.published is None:
        result.warnings.append(f"unparseable date {meta.published[:40]!r}: dated when first seen")
    skipped: list[str] = []
    candidate = make_candidate(raw, ctx.at(url or ctx.url), skipped)
    if candidate is None:
        raise ParseError(f"no http(s) URL for this page ({'; '.join(skipped)})")
    result.candidates.append(candidate)
    return result


def html_tree(body: bytes, content_type: str = "") -> tuple[LexborHTMLParser, str | None]:
    kind = content_type.lower()
    if ("xml" in kind or "json" in kind) and "html" not in kind:
        raise ParseError(f"not an HTML page but {content_type.split(';')[0]} (a feed?)")
    try:
        decoded = decode(body, content_type, markup="html")
    except DecodeError as exc:
        raise ParseError(str(exc), "undecodable") from None
    return LexborHTMLParser(decoded.text), decoded.warning


def _canonical(claimed: str | None, page_url: str, warnings: list[str]) -> str | None:
    """The page's own canonical URL when it is on the same site; the fetched URL otherwise."""
    if claimed:
        url = resolve_link(claimed, page_url) if not is_local(page_url) else safe_url(claimed)
        if url:
            return url
        warnings.append(f"canonical URL {claimed[:100]!r} ignored: not http(s) on this site")
    return page_url if not is_local(page_url) else None


def extract(tree: LexborHTMLParser, url: str) -> PageMeta:
    """Metadata by the precedence in the module docstring."""
    metas = _meta_tags(tree)
    ld = _article_jsonld(tree)
    return PageMeta(
        title=_first(
            _ld_text(ld, "headline"),
            _ld_text(ld, "name"),
            metas.get("og:title"),
            metas.get("twitter:title"),
            _node_text(tree, "title"),
            _node_text(tree, "h1"),
        ),
        canonical=_first(_link_rel(tree, "canonical"), metas.get("og:url"), _ld_url(ld)) or None,
        description=_first(
            _ld_text(ld, "description"),
            metas.get("og:description"),
            metas.get("twitter:description"),
            metas.get("description"),
        ),
        image=_image(tree, metas, ld, url),
        author=_first(_ld_author(ld), metas.get("author"), _meta_author(metas)),
        published=_first(
            _ld_text(ld, "datePublished"),
            *(metas.get(k) for k in DATE_META),
            _time_datetime(tree),
        ),
        section=_first(_ld_section(ld), metas.get("article:section"), metas.get("parsely-section")),
    )


def _first(*values: str | None) -> str:
    for value in values:
        text = plain(value or "")
        if text:
            return text
    return ""


def _meta_tags(tree: LexborHTMLParser) -> dict[str, str]:
    """name=, property= and itemprop= keys (lower-cased) → the first non-empty content."""
    found: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        content = attrs.get("content") or ""
        for key_attr in ("property", "name", "itemprop"):
            key = (attrs.get(key_attr) or "").strip().lower()
            if key and content.strip() and key not in found:
                found[key] = content
    return found


def _meta_author(metas: dict[str, str]) -> str:
    for key in ("article:author", "byl", "parsely-author", "dc.creator"):
        value = plain(metas.get(key, ""))
        if value and not value.lower().startswith(("http://", "https://")):
            return value.removeprefix("By ").removeprefix("by ")
    return ""


def _link_rel(tree: LexborHTMLParser, rel: str) -> str | None:
    for node in tree.css("link[rel][href]"):
        if rel in (node.attributes.get("rel") or "").lower().split():
            return node.attributes.get("href")
    return None


def _node_text(tree: LexborHTMLParser, selector: str) -> str:
    node = tree.css_first(selector)
    return node.text(deep=True) if node is not None else ""


def _time_datetime(tree: LexborHTMLParser) -> str:
    for selector in ("article time[datetime]", "time[itemprop=datePublished]", "time[datetime]"):
        node = tree.css_first(selector)
        if node is not None:
            return node.attributes.get("datetime") or ""
    return ""


def _image(
    tree: LexborHTMLParser, metas: dict[str, str], ld: dict[str, Any], url: str
) -> str | None:
    if not (metas.get("og:image:width") == "1" or metas.get("og:image:height") == "1"):
        for key in ("og:image:secure_url", "og:image", "og:image:url", "twitter:image"):
            if metas.get(key):
                return metas[key]
    ld_image = _ld_image(ld.get("image"))
    if ld_image:
        return ld_image
    for selector in ("article", "main", "[role=main]"):
        scope = tree.css_first(selector)
        if scope is not None:
            return first_image(scope.html or "", url)
    return None


def _article_jsonld(tree: LexborHTMLParser) -> dict[str, Any]:
    """The first JSON-LD node whose @type is an Article type; broken blocks are skipped."""
    for node in tree.css('script[type="application/ld+json"]'):
        text = node.text(deep=True)
        if len(text) > MAX_JSONLD:
            continue
        try:
            data = json.loads(text, strict=False)
        except (json.JSONDecodeError, RecursionError):
            continue
        for item in _walk(data):
            if _is_article(item):
                return item
    return {}


def _walk(data: Any, depth: int = 0) -> list[dict[str, Any]]:
    if depth > 4:
        return []
    if isinstance(data, list):
        return [n for item in data for n in _walk(item, depth + 1)]
    if not isinstance(data, dict):
        return []
    return [data, *_walk(data.get("@graph"), depth + 1)]


def _is_article(item: dict[str, Any]) -> bool:
    types = item.get("@type")
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    return any(isinstance(t, str) and t.lower().endswith(ARTICLE_TYPES) for t in names)


def _ld_text(ld: dict[str, Any], key: str) -> str:
    value = ld.get(key)
    return to_text(value) if isinstance(value, str) else ""


def _ld_url(ld: dict[str, Any]) -> str:
    value = ld.get("url") or ld.get("mainEntityOfPage")
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    return value if isinstance(value, str) else ""


def _ld_image(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl")
    return value if isinstance(value, str) else None


def _ld_author(ld: dict[str, Any]) -> str:
    authors = ld.get("author")
    if not isinstance(authors, list):
        authors = [authors]
    names = []
    for author in authors:
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str) and name.strip() and not name.startswith(("http://", "https://")):
            names.append(to_text(name))
    return ", ".join(names)


def _ld_section(ld: dict[str, Any]) -> str:
    section = ld.get("articleSection")
    if isinstance(section, list):
        section = section[0] if section else ""
    return to_text(section) if isinstance(section, str) else ""
