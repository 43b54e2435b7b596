"""Article-page metadata, listing links and sitemaps (pure parsers, corpus in tests/data/pages)."""

from __future__ import annotations

import contextlib
import gzip
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.gather.candidate import Candidate
from digest.gather.items import ParseContext, ParseError
from digest.gather.links import resolve_link, same_site
from digest.gather.listings import article_links
from digest.gather.pages import html_tree, parse_page
from digest.gather.sitemaps import gunzip, parse_sitemap, recent
from tests.conftest import DATA

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
PAGES = DATA / "pages"
PAGE_URL = "https://times.example/world/page"
SITE = "https://times.example"


def page(name: str, url: str = PAGE_URL) -> tuple[Candidate, list[str]]:
    ctx = ParseContext(url=url, now=NOW, sections=("Europe", "Asia"))
    parsed = parse_page((PAGES / name).read_bytes(), ctx, "text/html")
    return parsed.candidates[0], parsed.warnings


def sitemap_bytes(name: str) -> bytes:
    return (PAGES / name).read_bytes().replace(b"{base}", SITE.encode())


def test_json_ld_wins_for_text_and_rel_canonical_for_the_url() -> None:
    c, warnings = page("article-jsonld.html")
    assert c.title == "Harbour Deal Signed After Long Talks"
    assert c.summary == "Ministers agreed terms for the port & its workers."
    assert c.author == "Lena Ortiz, Sam Wu"
    assert c.published_at == datetime(2026, 11, 18, 15, tzinfo=UTC)
    assert c.section == "Europe"  # articleSection "europe" matched to a known section
    assert c.url == "https://times.example/world/harbour-deal?utm_source=rss&id=7"
    assert c.image_url == "https://times.example/images/harbour.jpg"  # og:image, made absolute
    assert warnings == []


def test_opengraph_and_meta_tags_stand_in_without_json_ld() -> None:
    c, _ = page("article-og.html")
    assert (c.title, c.url, c.author, c.section) == (
        "Bridges & Tunnels: An OpenGraph Story",
        "https://times.example/bridges",
        "Jo Park",
        "Asia",
    )
    assert c.published_at == datetime(2026, 11, 17, 8, 30, tzinfo=UTC)
    assert c.image_url == "https://times.example/bridges.jpg"


def test_a_bare_page_uses_title_time_and_the_first_real_image() -> None:
    c, _ = page("article-minimal.html")
    assert c.title == "Minimal page title" and c.url == PAGE_URL
    assert c.published_at == datetime(2026, 11, 16, tzinfo=UTC)
    assert c.image_url == "https://times.example/world/photo.jpg"  # the spacer pixel is skipped


def test_a_hostile_page_cannot_claim_another_sites_url_or_inject_anything() -> None:
    c, warnings = page("article-hostile.html")
    assert c.url == PAGE_URL
    assert "canonical URL 'https://other-site.example/stolen' ignored" in warnings[0]
    assert c.image_url is None  # javascript: og:image and a 1px tracker
    assert "\x01" not in c.summary and c.summary == "Desc with &amp; double and control"


def test_a_page_without_any_title_is_not_an_article() -> None:
    with pytest.raises(ParseError, match="no title"):
        page("no-title.html")


def test_meta_charset_is_honoured() -> None:
    c, _ = page("windows-1252.html")
    assert c.title == "\u201cSmart quotes\u201d from Windows"


def test_a_feed_served_where_a_page_was_expected_is_named() -> None:
    with pytest.raises(ParseError, match="not an HTML page but application/rss\\+xml"):
        parse_page(b"<rss/>", ParseContext(url=PAGE_URL, now=NOW), "application/rss+xml")


def test_listing_links_skip_navigation_tags_authors_pagination_files_and_other_sites() -> None:
    tree, _ = html_tree((PAGES / "listing.html").read_bytes())
    links = article_links(tree, f"{SITE}/middle-east/")
    assert links.urls == [
        f"{SITE}/middle-east/story-one",
        f"{SITE}/middle-east/story-two?utm_source=home",
    ]


def test_a_link_pattern_decides_alone() -> None:
    tree, _ = html_tree((PAGES / "listing.html").read_bytes())
    links = article_links(tree, f"{SITE}/middle-east/", pattern=r"/middle-east/[a-z-]+$")
    assert links.urls == [f"{SITE}/middle-east/story-one", f"{SITE}/middle-east/footer-story"]


def test_the_limit_caps_links_but_counts_them_all() -> None:
    tree, _ = html_tree((PAGES / "listing.html").read_bytes())
    links = article_links(tree, f"{SITE}/middle-east/", limit=1)
    assert len(links.urls) == 1 and links.found == 2


def test_links_stay_on_the_site_and_local_documents_stay_in_their_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert same_site("https://www.times.example/a", "https://news.times.example/b")
    assert not same_site("https://times.example/a", "https://times.example.evil.example/b")
    assert resolve_link("file:///etc/passwd", f"{SITE}/x") is None
    listing = tmp_path / "pages" / "index.html"
    assert resolve_link("story.html", str(listing)) == (tmp_path / "pages" / "story.html").as_uri()
    assert resolve_link("../../secret", str(listing)) is None
    assert resolve_link("javascript:x", str(listing)) is None


def test_sitemap_entries_with_dates_and_images_and_foreign_locs_skipped() -> None:
    sitemap = parse_sitemap(sitemap_bytes("sitemap.xml"), f"{SITE}/sitemap.xml")
    assert [e.url for e in sitemap.entries] == [
        f"{SITE}/a/new-one",
        f"{SITE}/a/old-one",
        f"{SITE}/a/undated",
    ]
    assert sitemap.entries[0].image == f"{SITE}/img/new-one.jpg"
    assert sitemap.skipped == 2  # another site, and file:


def test_recent_keeps_entries_since_the_week_started_newest_first() -> None:
    sitemap = parse_sitemap(sitemap_bytes("sitemap.xml"), f"{SITE}/sitemap.xml")
    chosen, more = recent(sitemap.entries, datetime(2026, 11, 13, tzinfo=UTC), 10)
    assert [e.url for e in chosen] == [f"{SITE}/a/new-one", f"{SITE}/a/undated"] and more == 0


def test_google_news_sitemap_gives_title_and_publication_date() -> None:
    (entry,) = parse_sitemap(sitemap_bytes("news-sitemap.xml"), f"{SITE}/news.xml").entries
    assert entry.news_title == "News sitemap title one"
    assert entry.lastmod == datetime(2026, 11, 19, 8, tzinfo=UTC)


def test_a_sitemap_index_lists_child_sitemaps() -> None:
    index = parse_sitemap(sitemap_bytes("sitemap-index.xml"), f"{SITE}/sitemap.xml")
    assert index.entries == [] and index.children[0].url == f"{SITE}/sitemap-news.xml"


def test_a_sitemap_with_a_dtd_is_refused_and_a_broken_one_names_the_line() -> None:
    with pytest.raises(ParseError, match="must not declare a DTD"):
        parse_sitemap(sitemap_bytes("sitemap-dtd.xml"), f"{SITE}/s.xml")
    with pytest.raises(
        ParseError, match=r"not well-formed XML at line 4, column 3: mismatched tag$"
    ):
        parse_sitemap(sitemap_bytes("sitemap-broken.xml"), f"{SITE}/s.xml")


def test_a_feed_is_not_a_sitemap() -> None:
    with pytest.raises(ParseError, match="root element is <rss>"):
        parse_sitemap(b"<rss version='2.0'/>", f"{SITE}/s.xml")


def test_gzipped_sitemaps_are_inflated_within_the_limit() -> None:
    body = gzip.compress(sitemap_bytes("news-sitemap.xml"))
    assert len(parse_sitemap(body, f"{SITE}/s.xml.gz").entries) == 1
    with pytest.raises(ParseError, match="too large: more than 1000 bytes once decompressed"):
        gunzip(gzip.compress(b"\0" * 1_000_000), 1000)


@given(st.binary(max_size=300))
@settings(max_examples=100, deadline=None)
def test_any_bytes_as_a_sitemap_give_entries_or_a_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_sitemap(body, f"{SITE}/s.xml")


@given(st.text(max_size=300))
@settings(max_examples=100, deadline=None)
def test_any_text_as_a_page_gives_a_candidate_or_a_parse_error(text: str) -> None:
    try:
        c, _ = (parse_page(text.encode(), ParseContext(url=PAGE_URL, now=NOW)).candidates[0], None)
    except ParseError:
        return
    assert c.url.startswith("https://times.example/") and len(c.title) <= 300
