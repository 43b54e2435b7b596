"""Untrusted HTML, text and URLs in; safe values out. Pure functions, property-tested.

Feeds and pages are hostile input: everything that reaches a template passes through here first,
and the templates escape it again (defence in depth). The rules:

- HTML goes through nh3 (the Rust `ammonia` sanitiser) with a short allow-list; the content of
  script, style, iframe, object, embed, template and svg is dropped, not just the tags.
- Plain text has no control characters (PostgreSQL refuses NUL; bidi overrides spoof), no lone
  surrogates (a JSON `"\\ud800"` escape cannot be stored as UTF-8), and single spaces.
- Entities are decoded exactly once: `R&amp;amp;D` in an HTML fragment is the text `R&amp;D`.
- Only absolute http(s) URLs survive: `javascript:`, `data:`, `vbscript:`, `file:` die here.
- 1x1 (or 0x0, or hidden) images are tracking pixels, not pictures.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = {"p", "br", "a", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https"}
DROP_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "svg", "noscript"}
MAX_URL = 2000
# C0/C1 controls except tab/newline/CR, DEL, lone surrogates, bidi embeddings and overrides.
_UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)
_WS = re.compile(r"\s+")
_SPACE = re.compile(r"\s")
_IMG_TAG = re.compile(r"<img\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
_ATTR = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+)")
_BLOCK_CLOSE = re.compile(
    r"</(p|div|li|h[1-6]|blockquote|tr|td|th|figcaption|pre)>|<br\s*/?>", re.I
)
_TINY_STYLE = re.compile(r"(width|height)\s*:\s*[01](px)?\s*(;|$)|display\s*:\s*none", re.I)
_TRAILING_PUNCT = ",;:.-\u2013\u2014 "


def clean_html(fragment: str) -> str:
    """A short allow-list of inline and block tags; only http(s) links, with rel=noopener."""
    return nh3.clean(
        plain_chars(fragment),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        clean_content_tags=DROP_CONTENT,
    )


def plain_chars(text: str) -> str:
    """`text` without characters that are unsafe to store or show (see the module docstring)."""
    return _UNSAFE_CHARS.sub("", text)


def plain(text: str) -> str:
    """Plain text (not HTML) made safe: unsafe characters gone, whitespace collapsed."""
    return _WS.sub(" ", plain_chars(text)).strip()


def to_text(fragment: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded exactly once."""
    if "<" not in fragment and "&" not in fragment:
        return plain(fragment)  # nothing to parse: the common case for titles
    with_breaks = _BLOCK_CLOSE.sub(" ", plain_chars(fragment))
    stripped = nh3.clean(
        with_breaks, tags=set(), clean_content_tags=DROP_CONTENT, strip_comments=True
    )
    # nh3 returns escaped text (&amp; etc.): unescape once to get the characters back.
    return plain(html.unescape(stripped))


def clip(text: str, max_chars: int) -> str:
    """At most `max_chars` characters, cut at a word boundary, with an ellipsis if cut."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(_TRAILING_PUNCT) + "…"


def excerpt(fragment: str, words: int, *, is_html: bool = True) -> str:
    """At most `words` words of plain text, cut at a word boundary, with an ellipsis if cut.

    A hostile "word" of 10,000 characters is still cut: the excerpt never exceeds `words` x 20
    characters.
    """
    text = to_text(fragment) if is_html else plain(fragment)
    parts = text.split(" ")
    if len(parts) > words:
        text = " ".join(parts[:words]).rstrip(_TRAILING_PUNCT) + "…"
    return clip(text, words * 20)


def safe_url(value: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL, or None: `javascript:`, `data:`, `vbscript:` die here."""
    if not value or not isinstance(value, str):
        return None
    value = plain_chars(value).strip()
    if base and not value.lower().startswith(("http://", "https://")):
        try:
            value = urljoin(base, value)
        except ValueError:
            return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a non-numeric or out-of-range port)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return None
    if _SPACE.search(value) or len(value) > MAX_URL:
        return None
    return value


def first_image(fragment: str, base: str | None) -> str | None:
    """The first real picture in an HTML fragment, made absolute; tracking pixels skipped."""
    for tag in _IMG_TAG.findall(fragment):
        attrs = img_attributes(tag)
        if is_pixel(attrs):
            continue
        for name in ("src", "data-src", "data-original"):
            url = safe_url(attrs.get(name), base=base)
            if url:
                return url
    return None


def img_attributes(tag: str) -> dict[str, str]:
    """The attributes of one <img ...> tag, entity-decoded once (as an HTML parser would)."""
    return {
        name.lower(): html.unescape(value.strip("\"'")) for name, value in _ATTR.findall(tag[4:])
    }


def is_pixel(attrs: dict[str, str]) -> bool:
    """1x1, 0x0 or hidden: a tracking pixel (web beacon), never a picture worth showing."""
    for dim in ("width", "height"):
        value = (attrs.get(dim) or "").strip().lower().removesuffix("px")
        if value in ("0", "1"):
            return True
    return bool(_TINY_STYLE.search(attrs.get("style") or ""))


def is_pixel_size(width: object, height: object) -> bool:
    """For media:content / og:image:width style metadata: a 0/1-pixel image is a beacon."""
    return any(str(v).strip() in ("0", "1") for v in (width, height) if v is not None)
