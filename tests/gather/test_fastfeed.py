"""The fast feed path (digest.gather.fastfeed) against feedparser: same items, or it declines.

For every corpus feed and for generated RSS 2.0 / Atom 1.0 documents, whenever `read_fast`
accepts a document, each of its entries must give the same RawItem as feedparser's entry, and
`parse_feed` must give the same candidates and warnings either way.
"""

from __future__ import annotations

import importlib.util
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.gather import feeds
from digest.gather.decode import to_utf8_xml
from digest.gather.fastfeed import read_fast
from digest.gather.fastitems import INERT
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
        parsed = feedparser.parse(
            xml,
            response_headers={"content-type": "application/xml; charset=utf-8"},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        assert not parsed.bozo
        version, entries = parsed.version, parsed.entries
    return [feeds._raw(entry, CTX, version, []) for entry in entries]


def outcome(body: bytes, fast: bool) -> Any:
    try:
        parsed = parse_feed(body, CTX, fast=fast)
    except ParseError as exc:
        return ("error", str(exc), exc.kind)
    return parsed.candidates, parsed.warnings, parsed.links


def assert_same(body: bytes) -> bool:
    """Both paths agree on `body`; True when the fast path read it."""
    assert outcome(body, fast=True) == outcome(body, fast=False)
    try:
        xml, _ = to_utf8_xml(body)
    except Exception:
        return False
    if read_fast(xml) is None:
        return False
    assert raw_items(xml, fast=True) == raw_items(xml, fast=False)
    return True


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_every_corpus_feed_reads_the_same_on_both_paths(path: Path) -> None:
    assert assert_same(path.read_bytes()) == (path.name in FAST)


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

    monkeypatch.setattr(feeds.feedparser, "parse", no_feedparser)
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


def test_inert_item_elements_have_no_feedparser_handler() -> None:
    """An element in INERT is skipped: feedparser must store it under a key nothing reads."""
    handlers = dir(feedparser.api.StrictFeedParser)
    keymap = feedparser.util.FeedParserDict.keymap
    for name in INERT:
        assert f"_start_{name}" not in handlers and f"_end_{name}" not in handlers
        assert name not in keymap
