"""Untrusted HTML, text and URLs in; safe values out. Pure functions, property-tested.

Feeds are hostile input: everything that reaches a template passes through here first, and the
templates escape it again (defence in depth).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = {"p", "br", "a", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https"}
_WS = re.compile(r"\s+")
_BLOCK_CLOSE = re.compile(r"</(p|div|li|h[1-6]|blockquote|tr)>|<br\s*/?>", re.I)


def clean_html(fragment: str) -> str:
    """A short allow-list of inline and block tags; only http(s) links, with rel=noopener."""
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "svg"},
    )


def to_text(fragment: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded exactly once."""
    with_breaks = _BLOCK_CLOSE.sub(" ", fragment)
    stripped = nh3.clean(
        with_breaks,
        tags=set(),
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "svg"},
        strip_comments=True,
    )
    # nh3 returns escaped text (&amp; etc.): unescape once to get the characters back.
    return _WS.sub(" ", html.unescape(stripped)).strip()


def excerpt(fragment: str, words: int) -> str:
    """At most `words` words of plain text, cut at a word boundary, with an ellipsis if cut."""
    parts = to_text(fragment).split(" ")
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:.-\u2013\u2014") + "…"


def safe_url(value: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL, or None: `javascript:`, `data:`, `vbscript:` die here."""
    if not value:
        return None
    value = value.strip()
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        value = "".join(ch for ch in value if ord(ch) >= 0x20 and ch != "\x7f")
    if base:
        try:
            value = urljoin(base, value)
        except ValueError:
            return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return None
    if any(ch.isspace() for ch in value):
        return None
    return value
