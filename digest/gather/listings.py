"""A section or listing page ("Middle East", "Latest") → the article links on it. Pure.

With a `link_pattern` (a regular expression searched in each absolute URL), exactly the matching
links are articles. Without one, the rules are: links inside <nav>, <header>, <footer>, <aside>
and <form> are navigation, not articles; links to the listing itself, the home page, tag, topic,
author, category, search, account and pagination pages, and to files (PDF, images, feeds) are not
articles either; everything else on the same site is. Links are returned in page order, once each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from digest.gather.fetch import is_http, local_path
from digest.gather.identity import canonical_url
from digest.gather.links import resolve_link

NAVIGATION = ("nav", "header", "footer", "aside", "form", "[role=navigation]")
NOT_ARTICLE_PATH = re.compile(
    r"/(tags?|topics?|authors?|category|categories|section|sections|page|search|login|"
    r"logout|signin|signup|register|subscribe|account|about|contact|privacy|terms|cookies|"
    r"feed|rss|newsletters?)(/|$)",
    re.I,
)
NOT_ARTICLE_FILE = re.compile(
    r"\.(pdf|jpe?g|png|gif|webp|svg|zip|mp3|mp4|xml|rss|json|css|js|ico)$", re.I
)
PAGINATION = re.compile(r"[?&](page|p|offset|start)=\d+", re.I)


@dataclass(frozen=True)
class Links:
    urls: list[str]
    found: int  # before the limit


def article_links(
    tree: LexborHTMLParser, base: str, *, pattern: str | None = None, limit: int = 30
) -> Links:
    """The article links of a listing page, in page order, at most `limit`."""
    base = _base_href(tree, base)
    regex = re.compile(pattern) if pattern else None
    if regex is None:
        for selector in NAVIGATION:
            for node in tree.css(selector):
                node.decompose()
    listing = canonical_url(base if is_http(base) else local_path(base).resolve().as_uri())
    seen: set[str] = set()
    urls: list[str] = []
    for node in tree.css("a[href]"):
        url = resolve_link(node.attributes.get("href"), base)
        if url is None:
            continue
        key = canonical_url(url)
        if key in seen or key == listing:
            continue
        if regex is not None and not regex.search(url):
            continue
        if regex is None and not looks_like_article(url, base):
            continue
        seen.add(key)
        urls.append(url)
    return Links(urls[:limit], len(urls))


def looks_like_article(url: str, base: str = "") -> bool:
    """Not the home page, not a tag/author/pagination page, not a file."""
    path = url.split("#", 1)[0].split("?", 1)[0]
    if path.startswith("file:"):
        directory = base.split("?", 1)[0].rsplit("/", 1)[0]
        rest = path[len(directory) :] if path.startswith(directory) else path
    else:
        after_host = path.split("://", 1)[-1]
        rest = after_host.split("/", 1)[1] if "/" in after_host else ""
    if not rest.strip("/"):
        return False  # the home page
    return not (
        NOT_ARTICLE_PATH.search("/" + rest.lstrip("/"))
        or NOT_ARTICLE_FILE.search(path)
        or PAGINATION.search(url)
    )


def _base_href(tree: LexborHTMLParser, url: str) -> str:
    """<base href> changes what relative links mean (when it stays on the same site)."""
    node = tree.css_first("base[href]")
    if node is None:
        return url
    return resolve_link(node.attributes.get("href"), url) or url
