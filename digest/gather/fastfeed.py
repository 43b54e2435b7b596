"""A fast path in front of feedparser: well-formed RSS 2.0 and Atom 1.0 read with xml.etree.

feedparser's Python SAX handlers cost about 0.35 ms an item, most of the CPU time of parsing
a feed. Most real feeds are well-formed RSS 2.0 or Atom 1.0 built from a handful of elements; for
those, the stdlib's C parser (expat) and the rules in `fastitems` give the same entries several
times faster. `read_fast` returns None, and `parse_feed` uses feedparser, whenever it cannot be
sure to agree with it:

- a DOCTYPE or ENTITY declaration anywhere in the document. This also keeps entity expansion
  ("billion laughs") and external entities away from this path: without a DTD, expat knows only
  the five predefined entities and refuses any other;
- anything expat refuses (feedparser's lenient parser then reads what it can, with a warning);
- a root other than <rss version="2.x"> or Atom 1.0's <feed>; a namespace declaration that
  `fastitems.PREFIXES` does not list (RSS 0.9x/1.0, Atom 0.3, iTunes ...); xml:base;
- outside the items, an element that would change feedparser's state for the items after it
  (content, summary, source, an item in the wrong place ...) or nests deeper than <image> does;
- inside an item, an element `fastitems` has no exact rule for.
"""

from __future__ import annotations

import io
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from digest.gather.fastitems import (
    ATOM,
    INERT,
    PREFIXES,
    Decline,
    Entry,
    Handler,
    atom_author,
    atom_link,
    atom_title,
    attributes,
    category,
    content,
    content_encoded,
    date,
    description,
    enclosure,
    guid,
    media_content,
    media_thumbnail,
    rss_author,
    rss_link,
    split_tag,
    summary,
    title,
)

DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
MEDIA = ("http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss")
_MEDIA: dict[tuple[str, str], Handler] = {
    **{(ns, "content"): media_content for ns in MEDIA},
    **{(ns, "thumbnail"): media_thumbnail for ns in MEDIA},
}
# Item children by (namespace, lower-cased name); those in *_ONCE may occur once per item.
RSS_ITEM: dict[tuple[str, str], Handler] = {
    ("", "title"): title,
    ("", "link"): rss_link,
    ("", "description"): description,
    ("", "guid"): guid,
    ("", "pubdate"): date("published"),
    ("", "author"): rss_author,
    ("", "category"): category,
    ("", "enclosure"): enclosure,
    (DC, "creator"): rss_author,
    (DC, "date"): date("updated"),
    (DC, "subject"): category,
    (CONTENT, "encoded"): content_encoded,
    **_MEDIA,
}
RSS_ONCE = frozenset({"title", "link", "description", "guid", "pubdate", "dc_date"})
ATOM_ENTRY: dict[tuple[str, str], Handler] = {
    (ATOM, "title"): atom_title,
    (ATOM, "link"): atom_link,
    (ATOM, "id"): guid,
    (ATOM, "published"): date("published"),
    (ATOM, "updated"): date("updated"),
    (ATOM, "author"): atom_author,
    (ATOM, "category"): category,
    (ATOM, "summary"): summary,
    (ATOM, "content"): content,
    **_MEDIA,
}
ATOM_ONCE = frozenset({"title", "id", "published", "updated", "summary", "content"})
# Outside items: elements whose feedparser handlers leave state behind for the items after them.
HAZARDS = frozenset(
    {
        *("rss", "channel", "feed", "item", "entry", "source", "summary"),
        *("content", "content_encoded", "fullitem", "body", "xhtml_body"),
    }
)
CONTAINERS = frozenset({"image", "textinput", "author", "contributor"})


def read_fast(xml: bytes) -> tuple[str, list[Entry]] | None:
    """(feedparser's version string, entries) for a document read exactly, else None."""
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        return None
    root = _parse(xml)
    if root is None:
        return None
    try:
        return _read(root)
    except Decline:
        return None


def _parse(xml: bytes) -> Element | None:
    """The tree, if expat accepts the document and every namespace it declares is known."""
    events = ElementTree.iterparse(io.BytesIO(xml), events=("start-ns",))
    try:
        for _, (_, uri) in events:
            if not uri or uri not in PREFIXES:
                return None
    except ElementTree.ParseError:
        return None
    root: Element = events.root  # type: ignore[attr-defined]
    return root


def _read(root: Element) -> tuple[str, list[Entry]]:
    uri, name, _ = split_tag(root.tag)
    if (uri, name) == (ATOM, "feed"):
        return "atom10", _items(root, ATOM, "entry")
    if (uri, name) != ("", "rss") or not attributes(root).get("version", "").startswith("2."):
        raise Decline  # RSS 0.9x and versionless <rss> get other version strings
    channels = [c for c in root if split_tag(c.tag)[:2] == ("", "channel")]
    if len(channels) != 1:
        raise Decline
    for child in root:
        if child is not channels[0]:
            _outside(child, nested=False)
    return "rss20", _items(channels[0], "", "item")


def _items(parent: Element, ns: str, name: str) -> list[Entry]:
    """The entries of a channel or feed; every other child is checked to be harmless."""
    attributes(parent)
    entries = []
    for child in parent:
        uri, local, _ = split_tag(child.tag)
        if (uri, local) == (ns, name):
            entries.append(read_entry(child, atom=bool(ns)))
        else:
            _outside(child, nested=True)
    return entries


def _outside(el: Element, nested: bool) -> None:
    """Channel-level elements do not touch entries, unless they are hazards or nest content."""
    _, _, name = split_tag(el.tag)
    if name in HAZARDS:
        raise Decline
    attributes(el)
    if len(el):
        if not nested or name not in CONTAINERS:
            raise Decline
        for child in el:
            _outside(child, nested=False)


def read_entry(el: Element, atom: bool) -> Entry:
    """The entry dict of one <item> or <entry>; Decline when any child has no exact rule."""
    if attributes(el):
        raise Decline  # rdf:about, lastmod and href attributes would set fields
    handlers, once = (ATOM_ENTRY, ATOM_ONCE) if atom else (RSS_ITEM, RSS_ONCE)
    entry: Entry = {}
    seen: set[str] = set()
    for child in el:
        uri, local, name = split_tag(child.tag)
        handler = handlers.get((uri, local))
        if handler is None:
            if name not in INERT or len(child):
                raise Decline
            attributes(child)  # still refuses xml:base
            continue
        if name in once:
            if name in seen:
                raise Decline  # feedparser's rules for repeats depend on order and depth
            seen.add(name)
        handler(entry, child)
    return entry
