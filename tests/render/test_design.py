"""The email's design (issue 13), read from the HTML and text the renderer makes: the lead story
and "In this edition", one link per story, the intro and preheader of each variant, the footer
of each variant, both palettes, the logo with images off, and a publication's own templates."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.colors import DARK, LIGHT, Palette
from digest.errors import RenderError
from digest.render.email import Branding, EditionView, ItemView, render_edition, render_mail
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
BRAND = Branding(
    publication_name="The Meridian Review",
    publication_url="https://meridianreview.example",
    postal_address="1 Example Ave, Washington, DC",
    title="The Weekly Round-up",
    timezone="America/New_York",
    logo_url="https://img.example/logo.png",
)
SECTIONS = ("Middle East", "Europe", "Asia")


def item(n: int, section: str = "Europe", image: bool = True, summary: str = "") -> ItemView:
    return ItemView(
        title=f"Story {n} headline",
        url=f"https://m.example/{n}",
        section=section,
        summary=summary or f"Summary of story {n}.",
        author="Ann Lee",
        image_url=f"https://img.example/{n}.jpg" if image else None,
        published_at=NOW - timedelta(hours=n),
    )


def edition(count: int = 6, intro: str = "The week in {sections}: {stories}.") -> EditionView:
    items = tuple(item(n, SECTIONS[n * len(SECTIONS) // count]) for n in range(count))
    return EditionView(1, "The Weekly Round-up: November 20, 2026", intro, NOW, items)


def tree(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def test_one_h1_then_the_lead_story_larger_than_the_rest() -> None:
    html = render_edition(edition(), BRAND).html
    doc = tree(html)
    assert [h.text(strip=True) for h in doc.css("h1")] == ["The Weekly Round-up"]
    lead = doc.css_first("h2.headline a")
    assert lead is not None and lead.text() == "Story 0 headline"
    assert "font-size:28px" in (doc.css_first("h2.headline").attributes.get("style") or "")
    cards = [h.text(strip=True) for h in doc.css("h3 a")]
    assert cards == [f"Story {n} headline" for n in range(1, 6)]  # the lead is not repeated


def test_a_variants_lead_is_its_own_first_story() -> None:
    html = render_edition(edition(), BRAND, ["Asia"]).html
    lead = tree(html).css_first("h2.headline a")
    assert lead is not None and lead.text() == "Story 4 headline"


def test_in_this_edition_lists_the_stories_only_past_eight() -> None:
    assert "In this edition" not in render_edition(edition(8), BRAND).html
    html = render_edition(edition(9), BRAND).html
    assert "In this edition" in html
    listed = [li.text(strip=True) for li in tree(html).css("li")]
    assert listed == [f"Story {n} headline" for n in range(1, 9)]


def test_one_link_per_story_for_screen_readers() -> None:
    doc = tree(render_edition(edition(), BRAND).html)
    for n in range(6):
        links = doc.css(f'a[href="https://m.example/{n}"]')
        read = [a for a in links if a.attributes.get("aria-hidden") != "true"]
        assert len(read) == 1 and read[0].text(strip=True) == f"Story {n} headline"
        for hidden in (a for a in links if a.attributes.get("aria-hidden") == "true"):
            assert hidden.attributes.get("tabindex") == "-1"
    assert "Read the article" not in doc.html


def test_article_images_are_decoration_and_the_logo_alt_is_styled() -> None:
    doc = tree(render_edition(edition(), BRAND).html)
    images = doc.css("img")
    logo = [i for i in images if i.attributes.get("src") == BRAND.logo_url]
    assert len(logo) == 1
    assert logo[0].attributes.get("alt") == "The Meridian Review"
    style = logo[0].attributes.get("style") or ""
    assert "font-size:26px" in style and f"color:{LIGHT.headline}" in style
    articles = [i for i in images if i.attributes.get("src") != BRAND.logo_url]
    assert articles and all(i.attributes.get("alt") == "" for i in articles)


def test_the_intro_is_filled_in_for_each_variant() -> None:
    view = edition()
    full = render_edition(view, BRAND)
    assert "The week in Middle East, Europe and Asia: 6 stories." in full.html
    europe = render_edition(view, BRAND, ["Europe"])
    assert "The week in Europe: 2 stories." in europe.html
    assert "The week in Europe: 2 stories." in europe.text
    assert "Middle East" not in europe.text
    one = render_edition(replace(view, items=view.items[:1]), BRAND)
    assert "The week in Middle East: 1 story." in one.html


def test_an_intro_without_placeholders_is_the_editors_own_and_an_empty_one_is_none() -> None:
    staff = "Five desks, one week {not ours}."
    assert staff in render_edition(edition(intro=staff), BRAND, ["Asia"]).text
    html = render_edition(edition(intro=""), BRAND).html
    assert 'class="text" style="font-size:18px' not in html


def test_each_variant_has_its_own_padded_preheader() -> None:
    view = edition()
    full, asia = render_edition(view, BRAND), render_edition(view, BRAND, ["Asia"])
    assert full.preheader == "Story 0 headline · Story 1 headline · Story 2 headline"
    assert asia.preheader == "Story 4 headline · Story 5 headline"
    hidden = re.search(r'<div style="display:none;[^"]*">(.*?)</div>', asia.html, re.S)
    assert hidden is not None
    text, padding = hidden.group(1).split("&#847;", 1)
    assert text == asia.preheader
    assert padding.count("&zwnj;&nbsp;") >= 100  # no body text follows it in the inbox
    staff = render_edition(replace(view, preheader="Our own line"), BRAND, ["Asia"])
    assert staff.preheader == "Our own line"


def test_the_preheader_keeps_whole_headlines() -> None:
    long = tuple(replace(item(n), title=f"{'Long headline words ' * 3}{n}") for n in range(3))
    email = render_edition(replace(edition(), items=long), BRAND)
    assert email.preheader.count("·") == 1 and not email.preheader.endswith("…")


def test_excerpts_end_at_a_sentence_or_a_clause_when_one_is_near() -> None:
    summary = "The talks resumed in Geneva. Both sides said progress was slow, and the next round…"
    view = replace(edition(), items=(item(0, summary=summary),))
    email = render_edition(view, BRAND)
    assert "Both sides said progress was slow…</p>" in email.html  # no sentence near: a clause
    summary = "Officials met twice. The deadline is Friday, and both sides say it is near. It…"
    email = render_edition(replace(view, items=(item(0, summary=summary),)), BRAND)
    assert "both sides say it is near.</p>" in email.html and "It…" not in email.html
    assert "say it is near.\nhttps://m.example/0" in email.text


def test_the_footer_says_why_for_each_variant_with_real_links() -> None:
    view = edition()
    full, europe = render_edition(view, BRAND), render_edition(view, BRAND, ["Europe"])
    assert "because you subscribed to it, with every section." in full.html
    assert "because you subscribed to it, with this section: Europe." in europe.html
    two = render_edition(view, BRAND, ["Europe", "Asia"])
    assert "with these sections: Europe and Asia." in two.html
    assert "with these sections: Europe and Asia." in " ".join(two.text.split())
    doc = tree(europe.html)
    buttons = {a.attributes.get("href"): a for a in doc.css("a.outline")}
    assert set(buttons) == {MANAGE_URL, UNSUBSCRIBE_URL}
    for button in buttons.values():
        style = button.attributes.get("style") or ""
        assert "display:inline-block" in style and "padding:12px 16px" in style
    assert BRAND.postal_address in europe.html and BRAND.postal_address in europe.text


def test_view_in_browser_only_when_the_edition_has_an_archive_page() -> None:
    view = edition()
    without = render_edition(view, BRAND)
    assert "View in browser" not in without.html and "View in browser" not in without.text
    archived = replace(view, archive_url="https://meridianreview.example/archive/2026-11-20")
    email = render_edition(archived, BRAND)
    assert 'href="https://meridianreview.example/archive/2026-11-20"' in email.html
    assert "View in your browser: https://meridianreview.example/archive/2026-11-20" in email.text


def test_both_palettes_and_the_color_scheme_declarations() -> None:
    dark = replace(DARK, surface="#101820", text="#f0f0f0")
    html = render_edition(edition(), replace(BRAND, dark=dark)).html
    head = html.split("</head>", 1)[0]
    assert '<meta name="color-scheme" content="light dark"' in head
    assert '<meta name="supported-color-schemes" content="light dark"' in head
    assert ":root { color-scheme: light dark; supported-color-schemes: light dark; }" in head
    media = head.split("@media (prefers-color-scheme: dark)", 1)[1]
    assert ".card, .card > table { background: #101820 !important; }" in media
    assert ".text { color: #f0f0f0 !important; }" in media
    assert "[data-ogsc] .text { color: #f0f0f0 !important; }" in head  # Outlook.com
    # The light palette is inline, for the apps that read no <style>.
    assert f"color:{LIGHT.text}" in html and f"background-color:{LIGHT.background}" in html


def test_a_publications_palette_fonts_and_widths() -> None:
    light = Palette(**{**LIGHT.__dict__, "accent": "#005a9c"})
    brand = replace(
        BRAND,
        light=light,
        font_body="Verdana, sans-serif",
        font_headline="'Playfair Display', serif",
        content_width=640,
        logo_width=220,
    )
    html = render_edition(edition(), brand).html
    assert "color:#005a9c" in html and "color:#8a1c1c" not in html
    assert "font-family:Verdana, sans-serif" in html
    assert "font-family:&#39;Playfair Display&#39;, serif" in html
    assert "max-width:640px" in html and 'width="592"' in html and "max-width:220px" in html


def test_a_dark_logo_replaces_the_logo_in_dark_mode_only() -> None:
    html = render_edition(edition(), replace(BRAND, dark_logo_url="https://img.example/d.png")).html
    doc = tree(html)
    dark = doc.css_first("div.logo-dark")
    assert dark is not None and "display:none" in (dark.attributes.get("style") or "")
    assert dark.css_first("img").attributes.get("src") == "https://img.example/d.png"
    assert ".logo-light { display: none !important; }" in html
    assert "logo-dark" not in render_edition(edition(), BRAND).html


# --- a publication's own templates ------------------------------------------------------------


def own(tmp_path: Path, files: dict[str, str]) -> Branding:
    """A folder of overrides, new for each call: templates are read once per folder and process
    (the environment does not look for changes while digest runs)."""
    folder = tmp_path / f"own-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return replace(BRAND, templates_dir=str(folder))


def test_an_override_replaces_one_file_and_can_include_ours(tmp_path: Path) -> None:
    brand = own(
        tmp_path,
        {
            "_footer.mjml.j2": '{% include "digest/_footer.mjml.j2" %}\n'
            "    <mj-section><mj-column><mj-text>Printed on recycled pixels.</mj-text>"
            "</mj-column></mj-section>\n",
        },
    )
    email = render_edition(edition(), brand)
    assert "Printed on recycled pixels." in email.html
    assert UNSUBSCRIBE_URL in email.html  # ours, included
    assert "Story 0 headline" in email.html  # every other file is still ours
    # The confirmation and welcome emails share the layout, and so the override.
    mail = render_mail("welcome", _welcome_context(), brand)
    assert "Printed on recycled pixels." in mail.html


def test_an_override_of_the_text_part(tmp_path: Path) -> None:
    brand = own(tmp_path, {"digest.txt.j2": "{{ title }}: {{ lead.title }}\n%%unsubscribe_url%%\n"})
    assert render_edition(edition(), brand).text == (
        "The Weekly Round-up: Story 0 headline\n%%unsubscribe_url%%\n"
    )


def test_a_broken_override_is_a_render_error_naming_the_file_and_line(tmp_path: Path) -> None:
    brand = own(tmp_path, {"_header.mjml.j2": "<mj-text>\n{% if %}\n</mj-text>\n"})
    with pytest.raises(RenderError, match=r"_header\.mjml\.j2, line 2: "):
        render_edition(edition(), brand)
    brand = own(tmp_path, {"_header.mjml.j2": "<mj-text>{{ no_such_value }}</mj-text>\n"})
    with pytest.raises(RenderError, match="'no_such_value' is undefined"):
        render_edition(edition(), brand)
    brand = own(tmp_path, {"_header.mjml.j2": "<mj-text><p>unclosed</mj-text>\n"})
    with pytest.raises(RenderError, match="MJML compile error"):
        render_edition(edition(), brand)


def _welcome_context() -> dict[str, object]:
    return {
        "subject": "Welcome",
        "preheader": "What you will get",
        "name": "",
        "frequency": "every week",
        "section_names": ["Europe"],
        "sections_label": "Europe",
        "every_section": False,
        "latest_url": None,
    }
