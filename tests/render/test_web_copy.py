"""The footer's "View in browser" link (only with an archive address), the archive's web copy
(no per-recipient placeholder, an invitation to subscribe), and the RSS feed's escaping."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import feedparser

from digest.render.email import WebCopy, render_edition
from digest.render.feed import Channel, FeedItem, rss
from digest.render.placeholders import PLACEHOLDERS, without_personal_links
from tests.render.test_email import BRAND, ITEMS, view

ARCHIVE = "https://news.example/archive/2026-11-20"


def test_the_email_links_its_archive_page_only_when_it_has_one() -> None:
    linked = render_edition(dataclasses.replace(view(*ITEMS), archive_url=ARCHIVE), BRAND)
    assert f'href="{ARCHIVE}"' in linked.html and "View in browser" in linked.html
    assert f"View in your browser: {ARCHIVE}" in linked.text
    plain = render_edition(view(*ITEMS), BRAND)
    assert "View in" not in plain.html and "View in" not in plain.text
    assert all(p in plain.html and p in plain.text for p in PLACEHOLDERS)


def test_the_web_copy_has_no_placeholder_and_invites_to_subscribe() -> None:
    copy = WebCopy("https://news.example/subscribe", "https://news.example/archive/")
    page = render_edition(view(*ITEMS), BRAND, web_copy=copy)
    assert not any(p in page.html or p in page.text for p in PLACEHOLDERS)
    assert 'href="https://news.example/subscribe"' in page.html
    assert "because you subscribed" not in page.html
    assert "Gulf talks resume" in page.html and "Euro bonds" in page.html


def test_a_template_that_prints_placeholders_anyway_gets_the_subscribe_page() -> None:
    body = '<a href="%%unsubscribe_url%%">x</a> <a href="%%manage_url%%">y</a>'
    assert without_personal_links(body, "/subscribe") == (
        '<a href="/subscribe">x</a> <a href="/subscribe">y</a>'
    )


def test_the_feed_escapes_hostile_titles_and_feedparser_reads_them_back() -> None:
    when = datetime(2026, 11, 20, 14, tzinfo=UTC)
    channel = Channel(
        "T & <Co>",
        "https://n.example/archive/",
        "https://n.example/archive/feed.xml",
        "d",
        "en",
        when,
    )
    hostile = '<script>alert(1)</script> "Quotes" & </title>'
    item = FeedItem(hostile, "https://n.example/archive/2026-11-20", when, "intro <b>", (hostile,))
    parsed = feedparser.parse(rss(channel, [item]))
    assert not parsed.bozo
    assert parsed.feed.title == "T & <Co>"
    (entry,) = parsed.entries
    assert entry.title == hostile
    assert "<script>" not in entry.summary  # feedparser's sanitiser and our escaping agree
    assert entry.published_parsed[:4] == (2026, 11, 20, 14)
