"""One RSS 2.0 item or Atom 1.0 entry (an ElementTree element) → the entry dict feedparser builds.

Only the keys `_raw` (digest.gather.feeds) reads are produced, each by the rule feedparser 6.0.14
applies (its `_start_*`/`_end_*` handlers and `pop()`, ported here where they are subtle). Only
feedparser's public API is used: its private helpers can change in any release, so the small
pieces taken from them (a URL pattern, the Windows-1252 table, the two common date formats) are
written out here, and a date in any other format is read by `feedparser.parse` itself. An element
without a rule here raises `Decline`, and the whole document goes to feedparser instead: being
fast is optional, being identical is not. pyproject.toml pins feedparser to the version these
rules copy; tests/gather/test_fastfeed.py compares both paths on the corpus and on generated feeds.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import feedparser

Entry = dict[str, Any]
Handler = Callable[[Entry, Element], None]

ATOM = "http://www.w3.org/2005/Atom"
XHTML = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{XML_NS}}}lang"
# feedparser's prefix for each namespace the fast path knows ("" = the RSS and Atom core).
PREFIXES = {
    "": "",
    ATOM: "",
    XHTML: "xhtml",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://search.yahoo.com/mrss/": "media",
    "http://search.yahoo.com/mrss": "media",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://wellformedweb.org/commentAPI/": "wfw",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
}
# Item children feedparser has no handler for and stores under keys `_raw` never reads.
# (feedburner:origLink is read: an item carrying it goes the feedparser way, digest.gather.feeds.)
INERT = frozenset({"comments", "wfw_commentrss", "wfw_comment", "slash_comments"})
XHTML_TYPE = "application/xhtml+xml"
TEXT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": XHTML_TYPE}
KNOWN_TYPES = frozenset({"text/plain", "text/html", XHTML_TYPE})
# feedparser's e-mail pattern for splitting "name (address)" bylines (its _sync_author_detail).
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_QUOT = {'"': "&quot;"}
# feedparser's _urljoin drops the extra slashes of "scheme:///path" with this pattern.
_EXTRA_SLASHES = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
# The two date formats nearly every feed uses, as feedparser reads them (datetimes.rfc822 and
# .w3dtf): "Wed, 18 Nov 2026 10:00:00 +0000" and "2026-11-18T10:00:00.5+01:00" (or a date alone).
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2})(?::(\d{2}))? ([+-]\d{4}|GMT|UTC?|Z|[ECMP][SD]T)",
    re.ASCII | re.IGNORECASE,
)
_W3DTF = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?",
    re.ASCII,
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# feedparser's zone names for these formats (hours east of UTC); "utc" is its default, 0.
_ZONES = {"gmt": 0, "ut": 0, "utc": 0, "z": 0, "edt": -4, "est": -5, "cdt": -5, "cst": -6}
_ZONES |= {"mdt": -6, "mst": -7, "pdt": -7, "pst": -8}


class Decline(Exception):
    """The document has a shape this module does not reproduce exactly: use feedparser."""


@lru_cache(maxsize=1024)
def split_tag(tag: str) -> tuple[str, str, str]:
    """(namespace, lower-cased local name, feedparser's handler name such as "dc_creator")."""
    uri, _, local = tag[1:].rpartition("}") if tag[:1] == "{" else ("", "", tag)
    prefix = PREFIXES.get(uri)
    if prefix is None:
        raise Decline
    local = local.lower()
    return uri, local, f"{prefix}_{local}" if prefix else local


def attributes(el: Element, lang: bool = True) -> dict[str, str]:
    """Names lower-cased, rel/type values too (feedparser's _normalize_attributes); xml:lang is
    dropped when `lang` (nothing read depends on it); any other namespaced or base attribute
    declines (xml:base would change how feedparser resolves links)."""
    out: dict[str, str] = {}
    for name, value in el.attrib.items():
        if name[:1] == "{":
            if lang and name == XML_LANG:
                continue
            raise Decline
        key = name.lower()
        if key == "base" or key in out:
            raise Decline
        out[key] = value.lower() if key in ("rel", "type") else value
    return out


def fix(text: str) -> str:
    """pop()'s last steps: undo UTF-8 read as Latin-1, then map C1 controls as Windows-1252."""
    if text.isascii():
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_C1_AS_CP1252)


def _c1_as_cp1252() -> dict[int, str]:
    """The C1 controls Windows-1252 defines as printable (0x80 "€" ...), which feedparser maps."""
    table = {}
    for code in range(0x80, 0xA0):
        with contextlib.suppress(UnicodeDecodeError):
            table[code] = bytes([code]).decode("cp1252")
    return table


_C1_AS_CP1252 = _c1_as_cp1252()


def join(uri: str) -> str:
    """feedparser's _urljoin(base, uri) for a document without a base, which is all the fast path
    reads: urljoin("", uri) is uri, and only extra slashes after "scheme://" are dropped."""
    return _EXTRA_SLASHES.sub(r"\1\3", uri) if ":///" in uri else uri


def leaf_text(el: Element) -> str:
    """The stripped text of an element that must not contain elements."""
    if len(el):
        raise Decline
    return (el.text or "").strip()


def no_attributes(el: Element) -> None:
    """Elements whose attributes feedparser would read (or resolve against) are declined."""
    if el.attrib and attributes(el):
        raise Decline


def text_construct(el: Element, default: str, atom: bool) -> tuple[str, str]:
    """(content type, value) of title/summary/content: text, HTML, or Atom inline XHTML."""
    attrs = attributes(el)
    if not atom and attrs:
        raise Decline
    if "mode" in attrs:
        raise Decline  # base64 and escaped modes (Atom 0.3)
    kind = attrs.get("type", default)
    kind = TEXT_TYPES.get(kind, kind)
    if kind not in KNOWN_TYPES:
        raise Decline  # feedparser would base64-decode other media types
    if kind == XHTML_TYPE:
        if not atom:
            raise Decline
        return kind, fix(_xhtml(el).strip())
    return kind, fix(leaf_text(el))


def _xhtml(el: Element) -> str:
    """Inline XHTML re-serialised the way feedparser does, its single wrapping <div> removed."""
    pieces = [escape(el.text)] if el.text else []
    for child in el:
        _xhtml_element(child, pieces)
        if child.tail:
            pieces.append(escape(child.tail))
    return "".join(_unwrap(pieces))


def _xhtml_element(el: Element, pieces: list[str]) -> None:
    uri, local, _ = split_tag(el.tag)
    if uri != XHTML or local in ("body", "svg", "math"):
        raise Decline  # non-XHTML children would run feedparser's element handlers
    # feedparser would serialise xml:lang as two attributes: declined rather than copied.
    attrs = "".join(f' {k}="{escape(v, _QUOT)}"' for k, v in attributes(el, lang=False).items())
    pieces.append(f"<{local}{attrs}>")
    if el.text:
        pieces.append(escape(el.text))
    for child in el:
        _xhtml_element(child, pieces)
        if child.tail:
            pieces.append(escape(child.tail))
    pieces.append(f"</{local}>")


def _unwrap(pieces: list[str]) -> list[str]:
    """feedparser's pop(): drop an enclosing <div> when all the content is nested in it."""
    while len(pieces) > 1 and not pieces[-1].strip():
        del pieces[-1]
    while len(pieces) > 1 and not pieces[0].strip():
        del pieces[0]
    wrapped = pieces and (pieces[0] == "<div>" or pieces[0].startswith("<div "))
    if not wrapped or pieces[-1] != "</div>":
        return pieces
    depth = 0
    for piece in pieces[:-1]:
        if piece.startswith("</"):
            depth -= 1
            if depth == 0:
                return pieces  # the first <div> closes before the end: not a wrapper
        elif piece.startswith("<") and not piece.endswith("/>"):
            depth += 1
    return pieces[1:-1]


def title(entry: Entry, el: Element, atom: bool = False) -> None:
    # RSS titles stay "text/plain" here: feedparser may guess "text/html", but _raw reads the
    # type of Atom titles only.
    kind, entry["title"] = text_construct(el, "text/plain", atom)
    entry["title_detail"] = {"type": kind}


def description(entry: Entry, el: Element) -> None:
    kind, entry["summary"] = text_construct(el, "text/html", False)
    entry["summary_detail"] = {"type": kind}


def summary(entry: Entry, el: Element) -> None:
    kind, entry["summary"] = text_construct(el, "text/plain", True)
    entry["summary_detail"] = {"type": kind}


def content(entry: Entry, el: Element, default: str = "text/plain", atom: bool = True) -> None:
    """A content body; its value becomes the summary when there is none yet (_end_content)."""
    kind, value = text_construct(el, default, atom)
    item = {"type": kind, "base": "", "value": value}
    src = attributes(el).get("src")
    if src:
        item["src"] = src
    entry.setdefault("content", []).append(item)
    entry.setdefault("summary", value)


def content_encoded(entry: Entry, el: Element) -> None:
    content(entry, el, "text/html", False)


def rss_link(entry: Entry, el: Element) -> None:
    no_attributes(el)
    entry.setdefault("links", []).append({"rel": "alternate", "type": "text/html"})
    value = fix(join(leaf_text(el)))
    if "&" in value:  # feedparser undoes double-escaped query strings in links
        value = _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
    entry["link"] = value
    if value:
        entry["links"][-1]["href"] = value


def atom_link(entry: Entry, el: Element) -> None:
    attrs = enforce_href(attributes(el))
    if "href" not in attrs or len(el):
        raise Decline  # a link without href is read from its text
    attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
    attrs["href"] = join(attrs["href"])
    entry.setdefault("links", []).append(attrs)
    kind = TEXT_TYPES.get(attrs["type"], attrs["type"])
    if attrs["rel"] == "alternate" and kind in ("text/html", XHTML_TYPE):
        entry["link"] = attrs["href"]


def enforce_href(attrs: dict[str, str]) -> dict[str, str]:
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs


def guid(entry: Entry, el: Element) -> None:
    """RSS guid and Atom id; a permalink GUID is the link unless the item has one already."""
    is_link = attributes(el).get("ispermalink", "true") == "true"
    value = leaf_text(el)
    value = fix(join(value) if is_link else value)
    entry["id"] = value
    if is_link:
        entry.setdefault("link", value)


def date(key: str) -> Handler:
    def handle(entry: Entry, el: Element) -> None:
        no_attributes(el)
        entry[key] = value = fix(leaf_text(el))
        entry[key + "_parsed"] = parse_date(value)

    return handle


def parse_date(value: str) -> time.struct_time | None:
    """feedparser's UTC time tuple for a date (None when it reads none).

    The two common formats are read here by feedparser's rules; for them its first handlers
    (W3DTF, then RFC 822) decide, and an impossible date ("31 Feb") is left to the later ones.
    """
    if not value:
        return None
    fields = _common_date(value)
    if fields is not None:
        year, month, day, hour, minute, second, offset = fields
        with contextlib.suppress(ValueError, OverflowError):
            stamp = datetime(year, month, day, hour, minute, second)
            return (stamp - offset).utctimetuple()
    return _feedparser_date(value)


def _common_date(value: str) -> tuple[int, int, int, int, int, int, timedelta] | None:
    """(year, month, day, hour, minute, second, UTC offset) of an RFC 822 or W3DTF date."""
    match = _W3DTF.fullmatch(value)
    if match:
        year, month, day, hour, minute, second, zone = match.groups("0")
        month_number = int(month)
        # "+05:30": feedparser reads hours and minutes, both signed; "Z" or no time at all is UTC.
        offset = _offset(zone[0], zone[1:3], zone[4:]) if zone[0] in "+-" else timedelta(0)
    else:
        match = _RFC822.fullmatch(value)
        if not match:
            return None
        day, month, year, hour, minute, second, zone = match.groups("0")
        month_number = _MONTHS[month.lower()]
        if zone[0] in "+-":  # "+0530"
            offset = _offset(zone[0], zone[1:3], zone[3:])
        else:
            offset = timedelta(hours=_ZONES[zone.lower()])
    return int(year), month_number, int(day), int(hour), int(minute), int(second), offset


def _offset(sign: str, hours: str, minutes: str) -> timedelta:
    factor = -1 if sign == "-" else 1
    return timedelta(hours=factor * int(hours), minutes=factor * int(minutes))


@lru_cache(maxsize=256)
def _feedparser_date(value: str) -> time.struct_time | None:
    """Any other date, read by feedparser through its public API: a one-item feed. The answer
    counts only when feedparser reads the string back unchanged (else Decline)."""
    document = f'<rss version="2.0"><channel><item><pubDate>{escape(value)}</pubDate></item>'
    parsed = feedparser.parse(
        f"{document}</channel></rss>".encode(),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = parsed.get("entries", [])
    if parsed.get("bozo") or len(entries) != 1 or entries[0].get("published") != value:
        raise Decline
    struct: time.struct_time | None = entries[0].get("published_parsed")
    return struct


def category(entry: Entry, el: Element) -> None:
    """RSS category (text, optional domain), Atom category (term, scheme, label attributes)."""
    attrs = attributes(el)
    scheme = attrs.get("scheme", attrs.get("domain"))
    _add_tag(entry, attrs.get("term"), scheme, attrs.get("label"))
    value = fix(leaf_text(el))
    if not value:
        return
    tags = entry["tags"]
    if tags and not tags[-1]["term"]:
        tags[-1]["term"] = value
    else:
        _add_tag(entry, value, None, None)


def _add_tag(entry: Entry, term: str | None, scheme: str | None, label: str | None) -> None:
    tags = entry.setdefault("tags", [])
    if term or scheme or label:
        tag = {"term": term, "scheme": scheme, "label": label}
        if tag not in tags:
            tags.append(tag)


def enclosure(entry: Entry, el: Element) -> None:
    if len(el):
        raise Decline
    attrs = enforce_href(attributes(el))
    attrs["rel"] = "enclosure"
    entry.setdefault("links", []).append(attrs)


def media_content(entry: Entry, el: Element) -> None:
    if len(el):
        raise Decline  # media:title, media:description ... inside would set entry fields
    entry.setdefault("media_content", []).append(attributes(el))


def media_thumbnail(entry: Entry, el: Element) -> None:
    """The url attribute, or else the element's text (feedparser reads both)."""
    attrs = attributes(el)
    entry.setdefault("media_thumbnail", []).append(attrs)
    url = fix(join(leaf_text(el)))
    if url.strip() and "url" not in attrs:
        attrs["url"] = url


def rss_author(entry: Entry, el: Element) -> None:
    """<author> and <dc:creator>: the raw string, then split into name and address."""
    no_attributes(el)
    entry.setdefault("authors", []).append({})
    entry["author"] = fix(leaf_text(el))
    _sync_author(entry)


def atom_author(entry: Entry, el: Element) -> None:
    """<author><name/><email/><uri/></author>, synced after each child as feedparser does: with
    several authors, the order of those syncs decides which address ends up on whom."""
    no_attributes(el)
    entry.setdefault("authors", []).append({})
    for child in el:
        uri, local, _ = split_tag(child.tag)
        no_attributes(child)
        if uri != ATOM or local not in ("name", "email", "uri"):
            raise Decline
        if local == "uri":
            _save_author(entry, "href", fix(join(leaf_text(child))))
        else:
            _save_author(entry, local, leaf_text(child))  # not fixed: pop() returns early
    own = (el.text or "") + "".join(child.tail or "" for child in el)
    entry["author"] = fix(own.strip())
    _sync_author(entry)


def _save_author(entry: Entry, key: str, value: str) -> None:
    """feedparser's _save_author: sync first (with the detail as it was), then store."""
    _sync_author(entry)
    entry["authors"][-1][key] = value


def _sync_author(entry: Entry) -> None:
    """feedparser's _sync_author_detail, including its quirks: the latest author's details
    make the byline, or the byline is split into name and address for the latest author."""
    detail = entry["authors"][-1]
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            entry["author"] = f"{name} ({email})"
        elif name or email:
            entry["author"] = name or email
        return
    author = entry.get("author")
    if not author:
        return
    match = _EMAIL.search(author)
    if match:
        author = author.replace(match.group(0), "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author:
        detail["name"] = author
    if match:
        detail["email"] = match.group(0)


def atom_title(entry: Entry, el: Element) -> None:
    title(entry, el, True)
