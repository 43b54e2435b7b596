"""Rendering: MJML compiles, everything from outside is escaped, both parts are complete."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from digest.backends.base import personalise
from digest.errors import RenderError
from digest.render.email import Branding, EditionView, ItemView, compile_mjml, render_edition
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL

BRAND = Branding(
    publication_name="The Meridian Review",
    publication_url="https://meridianreview.example",
    postal_address="1 Example Ave, Washington, DC",
    title="The Weekly Round-up",
    timezone="America/New_York",
    logo_url="https://img.example/logo.png",
)
WHEN = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def view(*items: ItemView, intro: str = "This week.") -> EditionView:
    return EditionView(
        1, "Round-up: November 20, 2026", intro, datetime(2026, 11, 20, 14, tzinfo=UTC), items
    )


ITEMS = (
    ItemView(
        "Gulf talks resume",
        "https://m.example/a",
        "Middle East",
        "Summary A",
        "Ann Lee",
        "https://img.example/a.jpg",
        WHEN,
    ),
    ItemView("Euro bonds", "https://m.example/b", "Europe", "Summary B", None, None, WHEN),
)


def test_html_contains_every_article_link_and_title() -> None:
    email = render_edition(view(*ITEMS), BRAND)
    for item in ITEMS:
        assert item.title in email.html
        assert f'href="{item.url}"' in email.html


def test_text_part_contains_every_article_and_the_unsubscribe_placeholder() -> None:
    email = render_edition(view(*ITEMS), BRAND)
    for item in ITEMS:
        assert item.title in email.text and item.url in email.text
    assert f"Unsubscribe: {UNSUBSCRIBE_URL}" in email.text
    assert BRAND.postal_address in email.text


def test_footer_has_unsubscribe_manage_links_and_postal_address() -> None:
    html = render_edition(view(*ITEMS), BRAND).html
    assert f'href="{UNSUBSCRIBE_URL}"' in html
    assert f'href="{MANAGE_URL}"' in html
    assert BRAND.postal_address in html


def test_hostile_text_is_escaped_in_html() -> None:
    evil = ItemView(
        '<script>alert(1)</script> & "x"',
        "https://m.example/e",
        "Europe",
        "<img src=x onerror=alert(1)>",
    )
    html = render_edition(view(evil), BRAND).html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_html_has_language_title_and_preheader() -> None:
    email = render_edition(view(*ITEMS), BRAND)
    assert '<html lang="en"' in email.html
    assert "<title>Round-up: November 20, 2026</title>" in email.html
    assert email.preheader == "Gulf talks resume · Euro bonds"


def test_preheader_is_the_variants_headlines_not_the_intro() -> None:
    assert render_edition(view(*ITEMS), BRAND).preheader == "Gulf talks resume · Euro bonds"
    assert render_edition(view(*ITEMS), BRAND, ["Europe"]).preheader == "Euro bonds"


def test_every_image_has_alt_text_and_no_google_fonts() -> None:
    html = render_edition(view(*ITEMS), BRAND).html
    images = re.findall(r"<img\b[^>]*>", html)
    assert images and all(' alt="' in img for img in images)
    assert "fonts.googleapis" not in html


def test_variant_keeps_only_its_sections() -> None:
    email = render_edition(view(*ITEMS), BRAND, sections=["Europe"])
    assert "Euro bonds" in email.html and "Gulf talks" not in email.html
    assert email.sections == ("Europe",)


def test_variant_with_no_articles_is_an_error() -> None:
    with pytest.raises(RenderError, match="no articles"):
        render_edition(view(*ITEMS), BRAND, sections=["Asia"])


def test_text_lines_stay_short() -> None:
    long = ItemView("T " * 80, "https://m.example/l", "Europe", "word " * 200)
    text = render_edition(view(long), BRAND).text
    assert max(len(line) for line in text.splitlines()) <= 998
    assert all(len(line) <= 78 for line in text.splitlines() if not line.startswith("http"))


def test_broken_mjml_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="MJML compile error"):
        compile_mjml("<mjml><mj-body><mj-section></mjml>")


def test_personalise_fills_every_placeholder() -> None:
    body = f"a {UNSUBSCRIBE_URL} b {MANAGE_URL} c {UNSUBSCRIBE_URL}"
    out = personalise(body, {UNSUBSCRIBE_URL: "U", MANAGE_URL: "M"})
    assert out == "a U b M c U"


IOS_METAS = (
    '<meta name="x-apple-disable-message-reformatting"',
    '<meta name="format-detection" content="telephone=no,date=no,address=no,email=no,url=no"',
)


def _head(html: str) -> str:
    match = re.search(r"<head>(.*?)</head>", html, re.S)
    assert match, html[:500]
    return match.group(1)


def test_head_stops_ios_reformatting_and_auto_links() -> None:
    head = _head(render_edition(view(*ITEMS), BRAND).html)
    for meta in IOS_METAS:
        assert head.count(meta) == 1, meta


def test_confirmation_email_head_has_the_same_metas(settings) -> None:
    from digest.people.notify import render_notice
    from subscribers.optin import CONFIRMATION, Notice

    notice = Notice(CONFIRMATION, "reader@example.com", "pid", "tok", 1)
    head = _head(render_notice(settings, notice).html)
    for meta in IOS_METAS:
        assert head.count(meta) == 1, meta
