"""The fast feed path (digest.gather.fastfeed) against feedparser: same items, or it declines.

For every corpus feed and for generated RSS 2.0 / Atom 1.0 documents, whenever `read_fast`
accepts a document, each of its entries must give the same RawItem as feedparser's entry, and
`parse_feed` must give the same candidates and warnings either way, compared field by field.
The pieces fastitems writes out instead of importing feedparser's private helpers (dates, the
Windows-1252 table, the URL slash fix) are checked against what `feedparser.parse` makes of them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from xml.sax.saxutils import escape

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.gather import fastitems, feeds
from digest.gather.decode import to_utf8_xml
from digest.gather.fastfeed import read_fast
from digest.gather.fastitems import INERT, Decline
from digest.gather.feeds import parse_feed
from digest.gather.items import ParseContext, ParseError, RawItem
from tests.conftest import DATA, EXAMPLES, ROOT
from tests.feed_strategies import atom_document, documents, rss_document

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
CTX = ParseContext(url="https://news.example/feed.xml", now=NOW, sections=("Europe", "Asia"))
CORPUS = sorted([*(DATA / "feeds").iterdir(), *(EXAMPLES / "feeds").iterdir()])
# Corpus feeds the fast path must read itself (the others use shapes it leaves to feedparser).
FAST = {
    *("author-email.xml", "atom-xhtml.xml", "bom-utf8.xml", "cdata.xml", "dates.xml"),
    *("duplicate-guids.xml", "empty.xml", "injection.xml", "latin1-declared.xml", "media.xml"),
    *("mixed-encoding.xml", "relative-links.xml", "utf16.xml", "wrong-charset.xml"),
    *("diplomacy.xml", "europe.xml", "middle-east.xml", "military-industrial-complex.xml"),
}


def raw_items(xml: bytes, fast: bool) -> list[RawItem]:
    """Every entry as feeds._raw sees it, from one path or the other."""
    if fast:
        read = read_fast(xml)
        assert read is not None
        version, entries = read
    else:
        parsed = plain_feedparser(xml)
        assert not parsed.bozo
        version, entries = parsed.version, parsed.entries
    return [feeds._raw(entry, CTX, version, []) for entry in entries]


def plain_feedparser(xml: bytes) -> Any:
    """feedparser.parse as digest.gather.feeds calls it."""
    return feedparser.parse(
        xml,
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def outcome(body: bytes, fast: bool) -> Any:
    try:
        parsed = parse_feed(body, CTX, fast=fast)
    except ParseError as exc:
        return ("error", str(exc), exc.kind)
    return parsed.candidates, parsed.warnings, parsed.links


def assert_same_fields(fast: list[Any], slow: list[Any], what: str) -> None:
    """Two lists of dataclasses (candidates, raw items), equal field by field."""
    assert len(fast) == len(slow), f"{what}: {len(fast)} on the fast path, {len(slow)} without"
    for n, (ours, theirs) in enumerate(zip(fast, slow, strict=True)):
        for field in dataclasses.fields(ours):
            mine, reference = getattr(ours, field.name), getattr(theirs, field.name)
            assert mine == reference, f"{what} {n}, {field.name}: {mine!r} != {reference!r}"


def assert_same(body: bytes) -> bool:
    """Both paths agree on `body`; True when the fast path read it."""
    fast, slow = outcome(body, fast=True), outcome(body, fast=False)
    if fast[0] != "error" and slow[0] != "error":
        assert_same_fields(fast[0], slow[0], "candidate")
    assert fast == slow
    try:
        xml, _ = to_utf8_xml(body)
    except Exception:
        return False
    if read_fast(xml) is None:
        return False
    assert_same_fields(raw_items(xml, fast=True), raw_items(xml, fast=False), "item")
    return True


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_every_corpus_feed_reads_the_same_on_both_paths(path: Path) -> None:
    assert assert_same(path.read_bytes()) == (path.name in FAST)


def test_the_corpus_is_every_feed_in_the_repository() -> None:
    """tests/data/feeds and examples/feeds hold every feed document; the rest are pages."""
    feeds_elsewhere = [
        path
        for folder in (DATA, EXAMPLES)
        for path in folder.rglob("*")
        if path.is_file() and path.parent.name != "feeds" and b"<rss" in path.read_bytes()[:4096]
    ]
    assert feeds_elsewhere == []
    assert len(CORPUS) >= 30 and {p.name for p in CORPUS} >= FAST


@given(documents)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_feeds_read_the_same_and_clean_ones_take_the_fast_path(
    drawn: tuple[str, bool],
) -> None:
    document, clean = drawn
    assert assert_same(document.encode()) == clean


@given(st.one_of(rss_document(), atom_document()), st.sampled_from(["latin-1", "utf-16"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_other_encodings_read_the_same(drawn: tuple[str, bool], encoding: str) -> None:
    document, _ = drawn
    head = f'<?xml version="1.0" encoding="{encoding}"?>'
    body = document.removeprefix('<?xml version="1.0" encoding="utf-8"?>')
    try:
        raw = (head + body).encode(encoding)
    except UnicodeEncodeError:
        return
    assert_same(raw)


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_gather", ROOT / "bench" / "gather.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_feeds_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/gather.py's parse + dedup goal depends on it: feedparser must not be called."""
    bench = _bench()
    body = bench.feed(3, random.Random(7))
    expected = parse_feed(body, CTX, fast=False)

    def no_feedparser(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser was called")

    monkeypatch.setattr(feedparser, "parse", no_feedparser)
    parsed = parse_feed(body, CTX, "application/rss+xml")
    assert parsed.candidates == expected.candidates and len(parsed.candidates) == bench.ITEMS


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"><channel/></rss>',
        b'<rss version="0.91"><channel><item><title>t</title></item></channel></rss>',
        b'<rss version="2.0"><channel><item><title>&nbsp;</title></item></channel></rss>',
        b'<rss version="2.0"><channel><item><title>t</title></channel></rss>',
        b'<feed xmlns="http://purl.org/atom/ns#" version="0.3"><entry/></feed>',
        b'<rss version="2.0"><channel><content:encoded xmlns:content='
        b'"http://purl.org/rss/1.0/modules/content/">x</content:encoded></channel></rss>',
    ],
)
def test_what_the_fast_path_declines(document: bytes) -> None:
    assert read_fast(document) is None


def feedparser_date(value: str) -> Any:
    """What feedparser.parse makes of a date: the reference for fastitems.parse_date."""
    item = f"<item><pubDate>{escape(value)}</pubDate></item>"
    parsed = plain_feedparser(f'<rss version="2.0"><channel>{item}</channel></rss>'.encode())
    return parsed.entries[0].get("published_parsed")


def two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map("{:02d}".format)


ZONES = ["GMT", "gmt", "UT", "UTC", "Z", "EST", "edt", "PST", "MDT", "CST"]
RFC822_DATES = st.tuples(
    st.sampled_from(["", "Wed, ", "sun, ", "THU, "]),
    st.integers(0, 32).map(str) | two(0, 32),
    st.sampled_from(["Jan", "feb", "MAR", "Sep", "Oct", "Dec"]),
    st.integers(1, 9999).map("{:04d}".format),
    st.tuples(two(0, 25), two(0, 61)).map(":".join),
    st.sampled_from(["", ":00", ":59", ":60"]),
    st.sampled_from(ZONES) | st.tuples(st.sampled_from("+-"), two(0, 99), two(0, 99)).map("".join),
).map(lambda p: f"{p[0]}{p[1]} {p[2]} {p[3]} {p[4]}{p[5]} {p[6]}")
W3DTF_DATES = st.tuples(
    st.integers(1, 9999).map("{:04d}".format),
    two(0, 13),
    two(0, 32),
    st.one_of(
        st.just(""),
        st.tuples(
            two(0, 25),
            two(0, 61),
            st.sampled_from(["", ":00", ":59.999", ":07.5", ":60"]),
            st.just("Z")
            | st.tuples(st.sampled_from("+-"), two(0, 23), two(0, 59)).map(
                lambda z: f"{z[0]}{z[1]}:{z[2]}"
            ),
        ).map(lambda t: f"T{t[0]}:{t[1]}{t[2]}{t[3]}"),
    ),
).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[3]}")


@given(RFC822_DATES | W3DTF_DATES)
@settings(max_examples=400, deadline=None)
def test_common_date_formats_read_as_feedparser_reads_them(value: str) -> None:
    """fastitems reads RFC 822 and W3DTF dates itself (feedparser's datetimes are private);
    an impossible one ("31 Feb", "24:00") it hands to feedparser, which may still read it."""
    with mock.patch.object(fastitems, "_feedparser_date", return_value=None) as asked:
        ours = fastitems.parse_date(value)
    if asked.called:
        ours = fastitems.parse_date(value)
    assert ours == feedparser_date(value)


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 18 Nov 2026 10:00:00 +0000",
        "wed, 18 nov 2026 10:00:00 gmt",
        "18 Nov 2026 10:00 +0530",
        "Sun, 1 Mar 2026 23:59:59 EST",
        "Sat, 31 Oct 2026 10:00:00 -0930",
        "2026-11-18",
        "2026-11-18T10:00:00Z",
        "2026-11-18T10:00:00.25-05:30",
        "2026-11-18T23:30+01:00",
    ],
)
def test_common_dates_do_not_ask_feedparser(value: str) -> None:
    with mock.patch.object(fastitems, "_feedparser_date", side_effect=AssertionError) as asked:
        ours = fastitems.parse_date(value)
    assert not asked.called and ours == feedparser_date(value) and ours is not None


@pytest.mark.parametrize(
    "value",
    [
        "sometime last week",
        "2026-02-30",  # feedparser's ISO 8601 handler rolls it over to 2 March
        "Wed, 18 Nov 26 10:00:00 +0000",
        "2026-11-18T10:00:00",
        "2026-11-18 10:00:00",
        "Wednesday, 18 November 2026 10:00:00 +0000",
        "Wed, 18 Nov 2026 10:00:00 +0000 (UTC)",
        "Wed Nov 18 10:00:00 2026",
        "",
    ],
)
def test_other_dates_are_read_by_feedparser(value: str) -> None:
    assert fastitems.parse_date(value) == (feedparser_date(value) if value else None)


def test_a_date_feedparser_would_read_differently_declines() -> None:
    """feedparser re-reads "Ã©" as UTF-8 mojibake: its answer would be about another string."""
    with pytest.raises(Decline):
        fastitems.parse_date("Ã© 2026")


def test_windows_1252_controls_read_the_same() -> None:
    """C1 controls (from a character reference or Latin-1 text) are mapped as Windows-1252."""
    controls = "".join(f"&#{code};" for code in range(0x80, 0xA0))
    xml = (
        f'<rss version="2.0"><channel><item><title>a{controls}z</title>'
        f"<description>{controls}</description><link>https://news.example/{controls}</link>"
        "</item></channel></rss>"
    ).encode()
    read = read_fast(xml)
    assert read is not None
    fast, slow = read[1][0], plain_feedparser(xml).entries[0]
    for key in ("title", "summary", "link"):
        assert fast[key] == slow[key], key
    assert "€" in fast["title"] and "\x81" in fast["title"]  # 0x81 is undefined in cp1252
    assert_same_fields(raw_items(xml, fast=True), raw_items(xml, fast=False), "item")


@pytest.mark.parametrize(
    "link", ["http:///triple.example/slash", "https:////four.example/", "urn:x:///y"]
)
def test_extra_slashes_after_the_scheme_read_the_same(link: str) -> None:
    xml = f'<rss version="2.0"><channel><item><link>{link}</link></item></channel></rss>'.encode()
    read = read_fast(xml)
    assert read is not None
    assert read[1][0]["link"] == plain_feedparser(xml).entries[0]["link"]


def test_inert_item_elements_have_no_feedparser_handler() -> None:
    """An element in INERT is skipped: feedparser must store it under a key nothing reads."""
    handlers = dir(feedparser.api.StrictFeedParser)
    keymap = feedparser.util.FeedParserDict.keymap
    for name in INERT:
        assert f"_start_{name}" not in handlers and f"_end_{name}" not in handlers
        assert name not in keymap
