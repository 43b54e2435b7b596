"""Hypothesis strategies for RSS 2.0 and Atom 1.0 documents with tricky content.

Each strategy draws a document and a flag: `clean` documents use only shapes the fast path
(digest.gather.fastfeed) promises to read itself, so it must accept them; the others add one
shape it must decline (xml:base, an unknown namespace, a repeated title, markup inside an RSS
description ...), which exercises the fallback. Text is drawn from fragments that have tripped
feed readers: entities, CDATA, mojibake, Windows-1252 controls, markup in titles, odd links.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

FRAGMENTS = [
    *("&", "<", ">", '"', "'", "&amp;", "&amp;amp;", "&lt;b&gt;", "&nbsp;", "&#8220;", "R&D"),
    *(" ", "  ", "\n", "\t", "\r\n", "word", "Word", "harbour", "Café", "Ã©", "â€œ", "\x93"),
    *("\x80", "€", "“quoted”", "]]", "<b>bold</b>", "<p>para</p>", "</p>", "<br/>", "(", ")"),
    *("<img src='/img/a.jpg'>", '<img src="https://cdn.example/p.gif" width="1" height="1">'),
    *('<a href="/rel">link</a>', "<script>alert(1)</script>", "a@b.example", "x < y"),
]
XML_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cs", "Cc"),
    exclude_characters="\ufffe\uffff",
)
TEXT = st.lists(st.sampled_from(FRAGMENTS) | st.text(XML_CHARS, max_size=6), max_size=8).map(
    "".join
)
URL_LIST = [
    "https://news.example/world/story-one",
    "http://news.example/a?b=1&c=2",
    "https://news.example/a?b=1&amp;c=2",
    "https://news.example/q?x&y;z",
    "/world/relative",
    "../img/up.jpg",
    "//cdn.example/protocol-relative",
    "http:///triple.example/slash",
    "  https://spaces.example/padded  ",
    "javascript:alert(1)",
    "data:text/html,hi",
    "",
    "tag:news.example,2026:1",
    "urn:uuid:0b3f",
    "HTTPS://UPPER.EXAMPLE/Path/",
    "https://ünï.example/ä?q=é",
    "https://news.example/utm?utm_source=rss&id=3",
]
URLS = st.sampled_from(URL_LIST)
NONEMPTY_URLS = st.sampled_from([url for url in URL_LIST if url])  # drawn, never filtered
AUTHORS = (
    st.sampled_from(
        [
            "editors@meridianreview.example (Grace Mwangi)",
            "someone@news.example",
            "Plain Name",
            "Name <a@b.co>",
            "(Name) a@b.com",
            "a@b.example (Name) extra",
            "",
            "Zoë Ünal",
            "x@[1.2.3.4] (IP Host)",
        ]
    )
    | TEXT
)
DATES = st.sampled_from(
    [
        "Wed, 18 Nov 2026 10:00:00 +0000",
        "Wed, 18 Nov 2026 10:00:00 GMT",
        "18 Nov 2026 10:00 +0530",
        "2026-11-18T10:00:00Z",
        "2026-11-18T10:00:00+01:00",
        "2026-11-18",
        "sometime last week",
        "",
        "Fri, 20 Nov 2099 10:00:00 +0000",
    ]
) | st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")
)
DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
NAMESPACES = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:wfw="http://wellformedweb.org/commentAPI/" '
    f"{DC}"
)


@st.composite
def text_node(draw: st.DrawFn, value: st.SearchStrategy[str] = TEXT) -> str:
    """Element content for `value`: escaped, CDATA, or with character references."""
    text = draw(value)
    how = draw(st.sampled_from(["escape", "cdata", "charref"]))
    if how == "cdata" and "]]>" not in text:
        return f"<![CDATA[{text}]]>"
    escaped = escape(text)
    if how == "charref":
        return "".join(f"&#{ord(c)};" if ord(c) > 127 else c for c in escaped)
    return escaped


def element(name: str, value: st.SearchStrategy[str] = TEXT, attrs: str = "") -> st.SearchStrategy:
    return text_node(value).map(lambda text: f"<{name}{attrs}>{text}</{name}>")


def attribute(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), values.map(lambda v: f" {name}={quoteattr(v)}"))


ENCLOSURE_TYPES = st.sampled_from(["image/jpeg", "IMAGE/PNG", "audio/mpeg", "video/mp4", ""])
SIZES = st.sampled_from(["1", "0", "300", " 1 ", "abc"])


MEDIA_KINDS = ["content", "thumbnail", "thumbnail-text", "enclosure"]


@st.composite
def media(draw: st.DrawFn, kinds: list[str] = MEDIA_KINDS) -> str:
    kind = draw(st.sampled_from(kinds))
    url = attribute("url", URLS)
    size = attribute("width", SIZES).flatmap(lambda w: attribute("height", SIZES).map(w.__add__))
    if kind == "content":
        attrs = draw(url) + draw(attribute("type", ENCLOSURE_TYPES))
        attrs += draw(attribute("medium", st.sampled_from(["image", "video", "Image"])))
        return f"<media:content{attrs}{draw(size)}/>"
    if kind == "thumbnail":
        return f"<media:thumbnail{draw(url)}{draw(size)}/>"
    if kind == "thumbnail-text":
        return draw(element("media:thumbnail", URLS, draw(size)))
    href = draw(st.sampled_from(["url", "href"]))
    attrs = draw(attribute(href, URLS)) + draw(attribute("type", ENCLOSURE_TYPES))
    return f'<enclosure{attrs} length="1"/>'


def category(name: str = "category") -> st.SearchStrategy[str]:
    terms = st.sampled_from(["Europe", "asia", "", "Europe "]) | TEXT
    domains = attribute("domain", st.sampled_from(["", "https://news.example/tags", "x"]))
    return domains.flatmap(lambda d: element(name, terms, d))


@st.composite
def rss_item(draw: st.DrawFn) -> list[str]:
    """The children of one clean <item>, in any order."""
    perma = draw(st.sampled_from(["", ' isPermaLink="true"', ' isPermaLink="false"']))
    once = {
        "title": element("title"),
        "link": element("link", URLS),
        "description": element("description"),
        "guid": element("guid", URLS | TEXT, perma),
        "pubDate": element("pubDate", DATES),
        "dc:date": element("dc:date", DATES),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(once)), unique=True))
    children = [draw(once[name]) for name in chosen]
    many = st.one_of(
        element("author", AUTHORS),
        element("dc:creator", AUTHORS),
        category(),
        category("dc:subject"),
        media(),
        element("content:encoded"),
        element("comments", URLS),
        element("wfw:commentRss", URLS),
    )
    children += draw(st.lists(many, max_size=5))
    return draw(st.permutations(children))


RSS_DECLINED = [
    '<source url="https://other.example/feed">Other</source>',
    '<title xml:base="https://base.example/">t</title>',
    "<title>again</title><title>twice</title>",
    "<description><p>unescaped markup</p></description>",
    '<foo:bar xmlns:foo="https://unknown.example/ns">x</foo:bar>',
    "<itemExtra>unknown element</itemExtra>",
    '<atom:link href="https://news.example/atom" rel="alternate"/>',
]


@st.composite
def rss_document(draw: st.DrawFn) -> tuple[str, bool]:
    items = draw(st.lists(rss_item(), max_size=4))
    clean = draw(st.booleans()) or not items
    if not clean:
        items[-1] = [*items[-1], draw(st.sampled_from(RSS_DECLINED))]
    head = draw(st.sampled_from(['<?xml version="1.0" encoding="utf-8"?>', ""]))
    channel = (
        "<title>Channel</title><link>https://news.example/</link><description>d</description>"
        '<atom:link href="https://news.example/feed" rel="self" type="application/rss+xml"/>'
        "<image><url>https://news.example/logo.png</url><title>Logo</title></image>"
    )
    body = "".join("<item>" + "".join(children) + "</item>" for children in items)
    rss = f'<rss version="2.0" {NAMESPACES}><channel>{channel}{body}</channel></rss>'
    return head + rss, clean


XHTML_TAGS = st.sampled_from(["p", "b", "a", "img", "span", "div", "br", "em", "script"])
XHTML_ATTRS = st.sampled_from(
    [
        *("", ' class="x"', ' href="/rel?a=1&amp;b=2"', ' src="/i.jpg"', ' rel="NoFollow"'),
        *(' type="Text/HTML"', ' title="q &quot;x&quot; &lt;"', ' width="1" height="1"'),
    ]
)


def xhtml_fragment() -> st.SearchStrategy[str]:
    leaf = TEXT.map(escape)
    return st.recursive(
        leaf,
        lambda inner: st.tuples(XHTML_TAGS, XHTML_ATTRS, st.lists(inner, max_size=3)).map(
            lambda t: f"<{t[0]}{t[1]}>{''.join(t[2])}</{t[0]}>"
        ),
        max_leaves=8,
    )


XHTML_NS = 'xmlns="http://www.w3.org/1999/xhtml"'


@st.composite
def atom_text(draw: st.DrawFn, name: str) -> str:
    kind = draw(st.sampled_from([None, "text", "html", "xhtml", "text/html"]))
    attr = f' type="{kind}"' if kind else ""
    if kind != "xhtml":
        return draw(element(name, TEXT, attr))
    space = draw(st.sampled_from(["", " ", "\n  "]))
    inner = draw(xhtml_fragment())
    shape = draw(st.sampled_from(["div", "two-divs", "bare"]))
    if shape == "div":
        inner = f'<div {XHTML_NS} class="c">{inner}</div>'
    elif shape == "two-divs":
        inner = f"<div {XHTML_NS}>{inner}</div><div {XHTML_NS}>more</div>"
    else:
        inner = f"<span {XHTML_NS}>{inner}</span>"
    return f"<{name}{attr}>{space}{inner}{space}</{name}>"


@st.composite
def atom_author(draw: st.DrawFn) -> str:
    parts = {
        "name": element("name", AUTHORS),
        "email": element("email", st.sampled_from(["a@b.example", "", "x@y.co.uk"])),
        "uri": element("uri", URLS),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(parts)), unique=True))
    return "<author>" + "".join(draw(parts[p]) for p in chosen) + "</author>"


@st.composite
def atom_link(draw: st.DrawFn) -> str:
    rel = draw(attribute("rel", st.sampled_from(["alternate", "enclosure", "self", "related"])))
    kind = draw(attribute("type", st.sampled_from(["text/html", "image/png", "html", "TEXT/HTML"])))
    href = draw(st.sampled_from(["href", "url", "uri"]))
    # url="" and uri="" are no href at all: feedparser then reads the link's text (declined).
    value = draw(URLS if href == "href" else NONEMPTY_URLS)
    return f"<link{rel}{kind} {href}={quoteattr(value)}/>"


@st.composite
def atom_entry(draw: st.DrawFn) -> list[str]:
    once = {
        "title": atom_text("title"),
        "id": element("id", URLS),
        "published": element("published", DATES),
        "updated": element("updated", DATES),
        "summary": atom_text("summary"),
        "content": atom_text("content"),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(once)), unique=True))
    children = [draw(once[name]) for name in chosen]
    terms = attribute("term", st.sampled_from(["Europe", "Asia", ""]))
    labels = attribute("label", st.sampled_from(["Label", ""]))
    many = st.one_of(
        atom_link(),
        atom_author(),
        st.tuples(terms, labels).map(lambda t: f"<category{t[0]}{t[1]}/>"),
        media([kind for kind in MEDIA_KINDS if kind != "enclosure"]),  # RSS's, not Atom's
    )
    children += draw(st.lists(many, max_size=5))
    return draw(st.permutations(children))


ATOM_DECLINED = [
    '<content type="xhtml"><p>not in the XHTML namespace</p></content>',
    "<contributor><name>C</name></contributor>",
    '<link href="https://news.example/x" xml:base="https://base.example/"/>',
    "<source><title>S</title></source>",
    "<title>one</title><title>two</title>",
    '<content type="image/png">iVBORw0KGgo=</content>',
]


@st.composite
def atom_document(draw: st.DrawFn) -> tuple[str, bool]:
    entries = draw(st.lists(atom_entry(), max_size=4))
    clean = draw(st.booleans()) or not entries
    if not clean:
        entries[-1] = [*entries[-1], draw(st.sampled_from(ATOM_DECLINED))]
    head = (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/"'
        ' xml:lang="en"><title>F</title><id>urn:feed</id><updated>2026-11-18T10:00:00Z</updated>'
        '<link rel="self" href="https://news.example/atom"/><author><name>Desk</name></author>'
    )
    body = "".join("<entry>" + "".join(children) + "</entry>" for children in entries)
    return f'<?xml version="1.0" encoding="utf-8"?>{head}{body}</feed>', clean


documents = st.one_of(rss_document(), atom_document())
