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
from collections.abc import Callable
from functools import partial
from typing import Any
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
_SPACE = re.compile(r"\s")
_IMG_TAG = re.compile(r"<img\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
_ATTR = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+)")
_BLOCK_CLOSE = re.compile(
    r"</(p|div|li|h[1-6]|blockquote|tr|td|th|figcaption|pre)>|<br\s*/?>", re.I
)
# Printable ASCII (no space, no control), a lower-case http(s) scheme and a bare host name (no
# port, no user, no brackets): safe_url accepts such a URL unchanged. Tested against the checks.
_PLAIN_HTTP = re.compile(r"(https?://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?:[/?#][!-~]*)?")
# A root-relative path of unreserved characters, without empty or dot segments: joined to a
# plain http(s) base, urljoin gives the base's origin followed by the path.
_ROOT_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/?")
_TINY_STYLE = re.compile(r"(width|height)\s*:\s*[01](px)?\s*(;|$)|display\s*:\s*none", re.I)
_TRAILING_PUNCT = ",;:.-\u2013\u2014 "
# A "<" that starts no tag is text (`a < b`, `<<`). Removing a tag after it can leave it touching
# a letter (`<<a>b` shows as "<b"), text that reads as a tag to whatever parses it next. Such a
# "<" is marked before the tags go (U+FFFF: plain_chars has removed any from the input) so that
# a letter it comes to touch is kept apart by a space.
_TEXT_LT = re.compile(r"<(?![A-Za-z/!?])")
_LT_MARK = "\uffff"
_LT_TOUCHING = re.compile(_LT_MARK + r"(?=[A-Za-z/!?])")


def _cleaner(**options: Any) -> Callable[[str], str]:
    """nh3.clean with fixed options. A reusable nh3.Cleaner (nh3 >= 0.2.18) builds its
    allow-lists once instead of on every call, which is most of the cost of a short fragment."""
    if hasattr(nh3, "Cleaner"):
        return nh3.Cleaner(**options).clean
    return partial(nh3.clean, **options)


_clean_html = _cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=ALLOWED_SCHEMES,
    link_rel="noopener noreferrer",
    strip_comments=True,
    clean_content_tags=DROP_CONTENT,
)
_strip_tags = _cleaner(tags=set(), clean_content_tags=DROP_CONTENT, strip_comments=True)


def clean_html(fragment: str) -> str:
    """A short allow-list of inline and block tags; only http(s) links, with rel=noopener."""
    return _clean_html(plain_chars(fragment))


def plain_chars(text: str) -> str:
    """`text` without characters that are unsafe to store or show (see the module docstring)."""
    return _UNSAFE_CHARS.sub("", text)


def plain(text: str) -> str:
    """Plain text (not HTML) made safe: unsafe characters gone, whitespace collapsed.

    str.split() splits on exactly the characters `\\s` matches, and is several times faster.
    """
    return " ".join(plain_chars(text).split())


def to_text(fragment: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded exactly once."""
    if "<" not in fragment and "&" not in fragment:
        return plain(fragment)  # nothing to parse: the common case for titles
    marked = _TEXT_LT.sub(_LT_MARK, plain_chars(fragment))
    stripped = _strip_tags(_BLOCK_CLOSE.sub(" ", marked))
    # nh3 returns escaped text (&amp; etc.): unescape once to get the characters back.
    text = _LT_TOUCHING.sub("< ", html.unescape(stripped)).replace(_LT_MARK, "<")
    return plain(text)


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
    if len(value) <= MAX_URL and _PLAIN_HTTP.fullmatch(value):
        return value  # what the checks below return for it, without urlsplit's cost
    return _checked_url(value, base)


def _checked_url(value: str, base: str | None) -> str | None:
    value = plain_chars(value).strip()
    if base and not value.lower().startswith(("http://", "https://")):
        try:
            value = _urljoin(base, value)
        except ValueError:
            return None
    if len(value) <= MAX_URL and _PLAIN_HTTP.fullmatch(value):
        return value  # as in safe_url: a joined "/img/1.jpg" usually is plain
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


def _urljoin(base: str, url: str) -> str:
    """urljoin, without its cost for the commonest case: "/img/1.jpg" on an article's URL."""
    origin = _PLAIN_HTTP.fullmatch(base) if url[:1] == "/" else None
    if origin and _ROOT_PATH.fullmatch(url):
        return origin.group(1) + url
    return urljoin(base, url)


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
