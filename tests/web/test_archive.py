"""The public archive: a sent edition's page holds every headline of every section and no
unsubscribe or manage token (nor a placeholder); the index lists sent editions newest first;
the RSS feed parses with feedparser; addresses are stable; `[web] archive = false` means no
pages and no "View in browser" link in the email."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
from sqlalchemy import select

from digest.edition.archive import slugs
from digest.store.models import EditionItem
from tests.send_helpers import make_edition
from tests.staff_helpers import StaffWeb, start_staff_web
from tests.subscribers_helpers import read_outbox, text_of

NEW_YORK = ZoneInfo("America/New_York")


def send(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    assert staff_web.publisher.post(f"/api/editions/{e}/approve").status_code == 200
    assert staff_web.publisher.post(f"/api/editions/{e}/send").status_code == 202
    assert staff_web.web.site.sends.wait(e)


def headlines(staff_web: StaffWeb) -> list[str]:
    with staff_web.web.session() as session:
        return list(session.scalars(select(EditionItem.title)))


def test_a_draft_is_not_in_the_archive(staff_web: StaffWeb) -> None:
    anyone = staff_web.client()
    assert anyone.get("/archive/2026-11-20").status_code == 404
    assert "No edition has been sent yet" in anyone.get("/archive/").text


def test_the_page_of_a_sent_edition_has_every_headline_and_no_personal_link(
    staff_web: StaffWeb,
) -> None:
    send(staff_web)
    page = staff_web.client().get("/archive/2026-11-20")
    assert page.status_code == 200
    html = page.text
    for title in headlines(staff_web):
        assert title.replace("'", "&#39;") in html or title in html, title
    assert "%%" not in html
    assert "/u/" not in html and "/manage/" not in html and "Unsubscribe" not in html
    # Every token a subscriber got is absent from the page.
    for message in read_outbox(staff_web.web.outbox):
        for token in re.findall(r"/(?:u|manage)/([A-Za-z0-9_.\-]+)", text_of(message)):
            assert token not in html
    assert f'href="{staff_web.web.url}/subscribe"' in html
    assert page.headers["cache-control"] == "public, max-age=300"
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and csp.startswith("default-src 'none'")
    assert "set-cookie" not in page.headers


def test_the_index_lists_sent_editions_newest_first(tmp_path: Path, db_path: Path) -> None:
    staff_web = start_staff_web(tmp_path, db_path)
    try:
        send(staff_web)
        # The week after, approved and sent a week later.
        later = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
        staff_web.web.clock.now = later
        second = make_edition(staff_web.web.factory, later)
        assert staff_web.publisher.post(f"/api/editions/{second}/send").status_code == 202
        assert staff_web.web.site.sends.wait(second)
        index = staff_web.client().get("/archive/").text
        links = re.findall(r'<a href="(/archive/[^"]+)"', index)
        assert links == ["/archive/2026-11-27", "/archive/2026-11-20", "/archive/feed.xml"]
    finally:
        staff_web.close()


def test_the_feed_is_rss_2_that_feedparser_reads(staff_web: StaffWeb) -> None:
    send(staff_web)
    response = staff_web.client().get("/archive/feed.xml")
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "The Weekly Round-up · The Meridian Review"
    (entry,) = parsed.entries
    assert entry.link == f"{staff_web.web.url}/archive/2026-11-20"
    assert entry.id == entry.link
    assert entry.title == "The Weekly Round-up: November 20, 2026"
    assert headlines(staff_web)[0] in entry.summary


def test_the_email_links_its_archive_page_in_html_and_text(staff_web: StaffWeb) -> None:
    send(staff_web)
    url = f"{staff_web.web.url}/archive/2026-11-20"
    for message in read_outbox(staff_web.web.outbox):
        assert f"View in your browser: {url}" in text_of(message)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f'<a href="{url}"' in html and "View in browser" in html
    assert staff_web.client().get(url.removeprefix(staff_web.web.url)).status_code == 200


def test_a_test_send_of_a_draft_has_no_view_in_browser_link(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    staff_web.editor.post(f"/api/editions/{e}/test", json={"to": ["desk@example.org"]})
    (message,) = read_outbox(staff_web.web.outbox)
    assert "View in" not in text_of(message) and "/archive/" not in message.as_string()


def test_without_an_archive_no_page_and_no_link(tmp_path: Path, db_path: Path) -> None:
    staff_web = start_staff_web(tmp_path, db_path, web={"archive": False})
    try:
        staff_web.web.settings.web.archive  # noqa: B018 (the override took)
        send(staff_web)
        anyone = staff_web.client()
        for path in ("/archive/", "/archive/2026-11-20", "/archive/feed.xml"):
            assert anyone.get(path).status_code == 404, path
        for message in read_outbox(staff_web.web.outbox):
            assert "View in" not in text_of(message) and "/archive/" not in message.as_string()
        detail = staff_web.publisher.get(f"/api/editions/{staff_web.edition_id}").json()
        assert detail["archive_url"] is None
    finally:
        staff_web.close()


def test_addresses_are_the_local_cutoff_date_and_never_change_meaning() -> None:
    friday = datetime(2026, 11, 20, 14, tzinfo=UTC)
    first = (1, friday, friday)
    assert slugs([first], NEW_YORK) == {1: "2026-11-20"}
    # A second edition with the same local date, sent later: the first keeps the bare date,
    # whichever id is lower.
    later = (0, friday + timedelta(hours=2), friday + timedelta(days=1))
    assert slugs([first, later], NEW_YORK) == {1: "2026-11-20", 0: "2026-11-20-0"}
    # The date is the publication's: 03:00 UTC on the 21st is still the 20th in New York.
    late_night = (2, datetime(2026, 11, 21, 3, tzinfo=UTC), None)
    assert slugs([late_night], NEW_YORK) == {2: "2026-11-20"}
