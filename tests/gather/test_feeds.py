"""Feed parsing against the corpus in tests/data/feeds (see tests/data/README for each file)."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.gather.feeds import parse_feed
from digest.gather.identity import canonical_url
from digest.gather.items import ParseContext, Parsed, ParseError
from tests.conftest import DATA

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
FEEDS = DATA / "feeds"
BASE = "https://news.example/feed.xml"


def parse(name: str, content_type: str = "", **ctx: object) -> Parsed:
    context = ParseContext(url=BASE, now=NOW, sections=("Europe", "Asia"), **ctx)  # type: ignore[arg-type]
    return parse_feed((FEEDS / name).read_bytes(), context, content_type)


def titles(parsed: Parsed) -> list[str]:
    return [c.title for c in parsed.candidates]


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("atom03.xml", "Atom zero three entry"),
        ("rss091.xml", "RSS zero nine one item"),
        ("rss10-rdf.xml", "RSS one point zero item"),
        ("atom-xhtml.xml", "Rising tides & falling bridges"),
        ("jsonfeed-v10.json", "JSON Feed one point zero item"),
    ],
)
def test_every_feed_format_is_read(name: str, title: str) -> None:
    assert titles(parse(name))[0] == title


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("latin1-declared.xml", "Café crème in Zürich"),
        ("bom-utf8.xml", "Ünïcödé story 1 about the harbour"),
        ("utf16.xml", "Sixteen-bit story 1 about the harbour"),
    ],
)
def test_declared_encodings_and_boms_are_honoured(name: str, title: str) -> None:
    parsed = parse(name)
    assert titles(parsed) == [title] and parsed.warnings == []


def test_mixed_encodings_keep_the_utf8_and_read_stray_bytes_as_windows_1252() -> None:
    parsed = parse("mixed-encoding.xml")
    assert titles(parsed) == ["Naïve \u201cquotes\u201d"]
    assert "mixed encodings" in parsed.warnings[0]


def test_a_wrong_charset_declaration_is_corrected_and_reported() -> None:
    parsed = parse("wrong-charset.xml")
    assert titles(parsed) == ["Déclaré ascii story 1 about the harbour"]
    assert parsed.warnings == ["declared us-ascii but is UTF-8: read as UTF-8"]


def test_binary_data_is_undecodable() -> None:
    with pytest.raises(ParseError, match="undecodable: binary data") as info:
        parse("binary.xml")
    assert info.value.kind == "undecodable"


def test_garbage_is_a_parse_error_with_the_line() -> None:
    with pytest.raises(ParseError, match=r"not well-formed XML at line 4, column 1"):
        parse("garbage.xml")


def test_malformed_xml_still_yields_its_items_with_a_warning_naming_the_line() -> None:
    parsed = parse("malformed.xml")
    assert len(parsed.candidates) == 3
    assert parsed.warnings[0].startswith("not well-formed XML at line 6, column 31: mismatched tag")


def test_an_html_page_is_not_a_feed_and_the_error_says_what_to_use() -> None:
    with pytest.raises(ParseError, match=r"this is an HTML page.*kind = 'listing'"):
        parse("html-page.xml")


def test_cdata_escaped_and_plain_descriptions_decode_entities_once() -> None:
    summaries = [c.summary for c in parse("cdata.xml").candidates]
    assert summaries == [
        "First para with R&D &amp; more. Second para.",
        "Escaped HTML with AT&T",
        "Plain text: Muscat & Doha < 5 km",
    ]


def test_relative_links_and_images_are_made_absolute() -> None:
    parsed = parse("relative-links.xml")
    assert [c.url for c in parsed.candidates] == [
        "https://news.example/world/relative-one",
        "https://news.example/world/two",
    ]
    assert parsed.candidates[0].image_url == "https://news.example/img/one.jpg"


def test_atom_xml_base_resolves_links_and_content_images() -> None:
    (c,) = parse("atom-xmlbase.xml").candidates
    assert c.url == "https://blog.example/posts/entry-one"
    assert c.image_url == "https://blog.example/posts/img/pic.png"


def test_missing_unparseable_and_future_dates_are_flagged() -> None:
    parsed = parse("dates.xml")
    flags = [(c.published_at is not None, c.date_flag) for c in parsed.candidates]
    assert flags == [(False, "missing"), (False, "missing"), (True, "future"), (True, None)]
    assert parsed.candidates[3].published_at == datetime(2026, 11, 18, 9, tzinfo=UTC)
    assert "unparseable date (e.g. 'sometime last week')" in parsed.warnings[0]


def test_a_guid_shared_by_different_articles_is_ignored_for_them() -> None:
    parsed = parse("duplicate-guids.xml")
    assert [c.guid for c in parsed.candidates][:2] == [None, None]
    assert "used by 2 items with different links" in parsed.warnings[0]


def test_script_iframe_and_style_never_reach_text_and_bad_links_are_skipped() -> None:
    parsed = parse("injection.xml")
    first = parsed.candidates[0]
    assert first.summary == "Safe words"
    assert first.image_url == "https://news.example/real.jpg"  # not the pixel, not javascript:
    assert "Headline with markup" in titles(parsed)
    assert not any("script" in c.title or "alert" in c.summary for c in parsed.candidates)
    assert len(parsed.candidates) == 3
    assert sum("skipped: unusable link" in w for w in parsed.warnings) == 3
    assert parsed.candidates[2].image_url is None  # a data: enclosure is no image


def test_entity_expansion_is_refused_by_the_parser() -> None:
    started = time.perf_counter()
    parsed = parse("billion-laughs.xml")
    assert all(len(c.title) < 100 for c in parsed.candidates)
    assert time.perf_counter() - started < 30  # bounded, not a hang (no timing contract)


def test_external_entities_are_never_resolved() -> None:
    parsed = parse("xxe.xml")
    assert all("root:" not in c.title for c in parsed.candidates)


def test_author_email_and_name_form_gives_the_name_and_a_bare_address_is_not_a_byline() -> None:
    assert [c.author for c in parse("author-email.xml").candidates] == [
        "Grace Mwangi",
        None,
        "Plain Name",
    ]


def test_images_come_from_media_content_thumbnail_or_image_enclosures_never_pixels() -> None:
    images = [c.image_url for c in parse("media.xml").candidates]
    assert images == [
        "https://cdn.example/thumb.jpg",
        "https://news.example/img/enclosed.jpg",
        None,
    ]


def test_a_feedburner_item_is_the_article_at_its_origin_link() -> None:
    first, second = parse("feedburner.xml").candidates
    url = "https://news.example/middle-east/ceasefire-talks-resume"
    assert canonical_url(first.url) == url  # tracking parameters go where every URL loses them
    assert second.url == "https://feeds.feedburner.example/~r/meridian/~3/Zz99Qq/"


def test_an_empty_feed_is_fine() -> None:
    parsed = parse("empty.xml")
    assert parsed.candidates == [] and parsed.warnings == []


def test_json_feed_edge_cases() -> None:
    parsed = parse("jsonfeed-edge.json")
    by_url = {c.url: c for c in parsed.candidates}
    untitled = by_url["https://micro.example/2026/11/numeric-id"]
    assert untitled.title.startswith("A post without a title") and untitled.guid == "1"
    assert "<b>literal</b>" in untitled.summary  # content_text is plain text, kept as written
    assert untitled.author == "Feed Author"
    odd = by_url["https://micro.example/2"]
    assert odd.title == "Lone surrogate and control chars" and odd.date_flag == "missing"
    assert odd.image_url == "https://micro.example/pic.jpg"
    from_id = by_url["https://micro.example/5"]
    assert from_id.author == "A One, B Two" and from_id.section == "Europe"
    external = by_url["https://elsewhere.example/6"]
    assert external.summary == "Summary wins over content." and external.image_url is None
    assert len(parsed.candidates) == 4
    assert "1 item skipped: not a JSON object" in parsed.warnings
    assert "1 item skipped: no link" in parsed.warnings


def test_broken_json_reports_line_and_column() -> None:
    with pytest.raises(ParseError, match=r"invalid JSON at line 4, column 46"):
        parse("jsonfeed-broken.json")


def test_json_feed_that_is_not_utf8_is_read_and_reported() -> None:
    parsed = parse("jsonfeed-not-utf8.json")
    assert titles(parsed) == ["Café latin one"] and "mixed encodings" in parsed.warnings[0]


def test_a_json_document_that_is_not_a_json_feed_is_refused() -> None:
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed(b'{"hello": "world"}', ParseContext(url=BASE, now=NOW))


def test_a_configured_section_wins_and_categories_map_to_known_sections() -> None:
    europe = ParseContext(url=BASE, now=NOW, section="Asia", sections=("Europe", "Asia"))
    body = (FEEDS / "jsonfeed-edge.json").read_bytes()
    assert {c.section for c in parse_feed(body, europe).candidates} == {"Asia"}


def test_a_huge_feed_keeps_the_newest_items_and_says_so() -> None:
    items = "".join(
        f"<item><title>Item {i}</title><link>https://h.example/{i}</link>"
        f"<pubDate>{datetime(2026, 1 + i % 12, 1 + i % 28, tzinfo=UTC):%a, %d %b %Y %H:%M:%S +0000}"
        "</pubDate></item>"
        for i in range(3000)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()
    parsed = parse_feed(body, ParseContext(url=BASE, now=NOW, max_items=100))
    assert len(parsed.candidates) == 100
    assert "the feed has 3000 items: kept the newest 100" in parsed.warnings[0]
    newest = max(c.published_at for c in parsed.candidates if c.published_at)
    assert newest.month == 12


def test_long_titles_and_authors_are_capped_for_the_database() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><item>'
        f"<title>{'word ' * 200}</title><link>https://x.example/long</link>"
        f"<author>{'N' * 500}</author><guid>{'g' * 3000}</guid></item></channel></rss>"
    ).encode()
    (c,) = parse_feed(body, ParseContext(url=BASE, now=NOW)).candidates
    assert len(c.title) <= 300 and len(c.author or "") <= 200 and len(c.guid or "") <= 500


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_items_or_a_parse_error_never_a_crash(body: bytes) -> None:
    try:
        parsed = parse_feed(body, ParseContext(url=BASE, now=NOW))
    except ParseError as exc:
        assert str(exc)
        return
    assert all(c.url.startswith(("http://", "https://")) for c in parsed.candidates)


@given(st.text(alphabet='<>/"=&;{}[],: abcdefghijklmnopqrstuvwxyz0123456789\\\n', max_size=200))
@settings(max_examples=150, deadline=None)
def test_json_like_junk_is_read_or_refused_cleanly(text: str) -> None:
    body = ('{"version": "https://jsonfeed.org/version/1.1", "items": [' + text).encode()
    with contextlib.suppress(ParseError):
        parse_feed(body, ParseContext(url=BASE, now=NOW), "application/feed+json")
