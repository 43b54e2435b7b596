"""Hostile values come out inert: in the HTML, in the text part, in the subject, and through a
backend's per-recipient substitution.

Titles, excerpts and authors come from feeds; section names from the configuration; the subject,
preheader and intro from staff. Gather sanitises what it stores, but the renderer is the last
step before a reader and must not rely on it (digest/render/inert.py). "Inert" means:
- HTML: the document has exactly the elements, attributes and (Outlook's conditional) comments
  it has for harmless values; each value reads back from the DOM as it was given;
- text part and subject: shown as given (`{{ 7*7 }}` never becomes 49);
- a value that spells a per-recipient placeholder (`%%unsubscribe_url%%`) is never filled with a
  reader's own link, by `personalise` (SMTP, outbox) or by SendGrid's substitutions;
- an unpaired bidi override, embedding or isolate cannot reorder the rest of the email.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.backends.base import Batch, Recipient
from digest.backends.outbox import OutboxBackend
from digest.backends.sendgrid import SendGridBackend
from digest.render.email import (
    Branding,
    EditionView,
    ItemView,
    RenderedEmail,
    render_edition,
)
from digest.render.inert import clean, paired_bidi, text_value
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
CUTOFF = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)

RLO, LRI, RLI, FSI, PDI, PDF, LRM, RLM = (
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u202c",
    "\u200e",
    "\u200f",
)
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "{{ 7*7 }}",
    "{% raw %}",
    "{# c #}",
    UNSUBSCRIBE_URL,
    MANAGE_URL,
    "%%%manage_url%%%",
    "&amp;",
    "&lt;b&gt;",
    RLO + "evil",
    LRI + "isolated",
    RLI + "x" + PDI + PDI,
    FSI,
    LRM + "mark" + RLM,
    "</title><script>alert(1)</script>",
    "]]><!--",
    "-->",
    "\\u{202e}",
    "\x00\x1b\ufffe\ud800",  # MRML cannot parse the first three; UTF-8 cannot encode the last
]
EVIL = " ".join(HOSTILE)
# What the reader must get for EVIL: the same characters in one line, without the ones MRML or
# UTF-8 cannot take, and without the bidi controls that are never closed (the RLO, the FSI); the
# pairs stay (LRI ... RLI x PDI PDI: the second PDI closes the LRI).
EVIL_SHOWN = clean(EVIL)
REAL_UNSUBSCRIBE = "https://news.example/u/AbC123def456.ghIJ789klmNOpqr-stuVWX_yz0123456789abcdef"
REAL_MANAGE = "https://news.example/manage/AbC123def456.mnoPQR678stuVWX-yz0_123456789abcdefghi"


def item(title: str, summary: str, author: str, section: str, url: str) -> ItemView:
    return ItemView(title, url, section, summary, author, "https://img.example/a.jpg", WHEN)


def view(
    title: str,
    summary: str,
    *,
    author: str = "Ann Lee",
    section: str = "Europe",
    intro: str = "This week.",
    subject: str = "Round-up",
    preheader: str = "",
) -> EditionView:
    items = (
        item(title, summary, author, section, "https://m.example/a"),
        item("Second story", "Second summary", "Bo Chen", "Asia", "https://m.example/b"),
    )
    return EditionView(1, subject, intro, CUTOFF, items, preheader)


def hostile_view() -> EditionView:
    return view(
        EVIL,
        EVIL,
        author=EVIL,
        section="Europe " + EVIL,
        intro=EVIL,
        subject="Round-up " + EVIL,
        preheader=EVIL,
    )


def structure(html: str) -> list[tuple[str, ...]]:
    """Every element with its attribute names, and every comment with its text, in order."""
    out: list[tuple[str, ...]] = []
    for node in LexborHTMLParser(html).root.traverse(include_text=False):
        if node.tag == "-comment":
            out.append(("-comment", node.html or ""))
        else:
            out.append((node.tag or "", *sorted(node.attributes)))
    return out


def headline(html: str, n: int = 0) -> LexborNode:
    """The n-th story's headline: the lead's <h2>, then the cards' <h3>s."""
    return LexborHTMLParser(html).css("h2.headline a, h3.headline a")[n]


def assert_inert_html(html: str, benign: str) -> None:
    """No element, attribute or comment that the benign rendering does not have."""
    assert structure(html) == structure(benign)
    for node in LexborHTMLParser(html).root.traverse(include_text=False):
        assert node.tag != "script"
        assert not any(name.lower().startswith("on") for name in node.attributes), node.html
    # The only placeholders are the template's own (two links in the footer), and MRML wrote
    # no value as a Rust escape.
    assert html.count("%%") == 4
    assert html.count(UNSUBSCRIBE_URL) == 1 and html.count(MANAGE_URL) == 1
    assert "\\u{" not in html
    assert "{{" not in html and "{%" not in html and "{#" not in html


# --- the HTML ---------------------------------------------------------------------------------


def test_hostile_values_add_no_element_attribute_or_comment() -> None:
    evil = render_edition(hostile_view(), BRAND).html
    benign = render_edition(
        view("T", "S", author="A", section="Europe", intro="I", subject="R", preheader="P"), BRAND
    ).html
    assert_inert_html(evil, benign)


def test_every_hostile_value_reads_back_as_given() -> None:
    html = render_edition(hostile_view(), BRAND).html
    tree = LexborHTMLParser(html)
    assert headline(html).text() == EVIL_SHOWN
    assert tree.css_first("p.accent").text() == "Europe " + EVIL_SHOWN  # the lead's section
    assert tree.css("p.muted")[1].text().startswith(EVIL_SHOWN + " · ")  # [0]: the date
    texts = [p.text() for p in tree.css("p.text")]
    assert texts.count(EVIL_SHOWN) == 2  # the intro and the excerpt
    assert tree.css_first("title").text() == "Round-up " + EVIL_SHOWN
    lead = tree.css_first('img[src="https://img.example/a.jpg"]')
    assert lead.attributes["alt"] == ""  # decoration beside its headline (issue 13)
    assert "{{ 7*7 }}" in EVIL_SHOWN and UNSUBSCRIBE_URL in EVIL_SHOWN
    assert RLO not in EVIL_SHOWN and FSI not in EVIL_SHOWN and "\x00" not in EVIL_SHOWN
    assert EVIL_SHOWN.count(PDI) == 2 and LRI in EVIL_SHOWN and RLI in EVIL_SHOWN


def test_a_value_never_forms_a_placeholder_even_across_its_own_percent_signs() -> None:
    for value in ("%%unsubscribe_url%%", "%%%unsubscribe_url%%%", "%" * 7, "a%%b%%%%c"):
        email_ = render_edition(view(value, value, author=value, intro=value), BRAND)
        assert email_.html.count("%%") == 4, value  # the footer's two placeholders only
        assert email_.text.count("%%") == 4, value
        assert headline(email_.html).text() == value  # and it still reads as written


def test_attribute_values_keep_their_characters() -> None:
    """MRML writes some characters of an attribute as Rust escapes (`\\u{a0}`, `\\\\`); they go in
    as character references instead, so an alt text reads as the name does. (Article images
    have an empty alt since issue 13: the logo's alt, the publication's name, is the value.)"""
    name = "AC\\DC\u00a0live · cafe\u0301 ❤\ufe0f 👩\u200d💻 soft\u00adhyphen " + LRM + "שלום" + RLM
    html = render_edition(view(name, "S"), replace(BRAND, publication_name=name)).html
    logo = LexborHTMLParser(html).css_first('img[src="https://img.example/logo.png"]')
    assert logo.attributes["alt"] == name
    assert clean(name) == headline(html).text()
    assert "\\u{" not in html and "AC\\\\DC" not in html


def test_a_url_cannot_carry_a_placeholder() -> None:
    evil = replace(
        hostile_view(),
        items=(item("T", "S", "A", "Europe", "https://evil.example/?leak=%%manage_url%%&ok=%41"),),
    )
    email_ = render_edition(evil, BRAND)
    assert 'href="https://evil.example/?leak=%25%25manage_url%25%25&amp;ok=%41"' in email_.html
    assert "https://evil.example/?leak=%25%25manage_url%25%25&ok=%41" in email_.text


# --- bidi -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (RLO + "abc", "abc"),  # an override that is never closed
        ("abc" + PDF, "abc"),  # a closer that closes nothing
        (RLI + "abc" + PDI, RLI + "abc" + PDI),  # an isolate closed inside: harmless, kept
        (RLO + "a" + PDF + RLO + "b", RLO + "a" + PDF + "b"),
        (LRI + RLO + "a" + PDI, LRI + "a" + PDI),  # the PDI closes the isolate, not the RLO
        # A PDF cannot close past an isolate (so it closes nothing), and the RLO stays open.
        (RLO + LRI + "a" + PDF + PDI, LRI + "a" + PDI),
        (PDI + FSI + "a", "a"),
        (LRM + "a" + RLM, LRM + "a" + RLM),  # marks open no scope: kept
    ],
)
def test_unpaired_bidi_controls_are_dropped_paired_ones_kept(value: str, kept: str) -> None:
    assert paired_bidi(value) == kept


def test_an_override_in_a_value_cannot_reorder_what_follows() -> None:
    """An author "\u202eeeL nnA" must not turn the byline's date around: no override or isolate
    that the value opens stays open after it, in the HTML, the text part or the subject."""
    author = RLO + "eeL nnA"
    email_ = render_edition(
        view("T" + LRI, "S" + RLI, author=author, intro=FSI + "i", subject=RLO + "Subject"), BRAND
    )
    byline = LexborHTMLParser(email_.html).css("p.muted")[1].text()  # [0]: the masthead's
    assert byline == "eeL nnA · November 18, 2026"
    assert "eeL nnA · November 18, 2026" in email_.text
    for body in (email_.html, email_.text, email_.subject):
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", body)
        assert "&#8238;" not in body and "&#8294;" not in body


# --- the text part and the subject ------------------------------------------------------------


def test_text_part_shows_values_as_given_and_evaluates_nothing() -> None:
    text = render_edition(hostile_view(), BRAND).text
    shown = text_value(EVIL_SHOWN)  # EVIL_SHOWN with a word joiner between two %
    flat = "".join(text.split())
    assert "".join(shown.split()) in flat  # the title, wrapped at 76 columns
    assert "<script>alert(1)</script>" in text and "{{ 7*7 }}" in text and "{% raw %}" in text
    assert "49" not in text
    assert text.count("%%") == 4  # Unsubscribe: and Choose sections: lines only
    assert "%\u2060%unsubscribe_url%\u2060%" in text  # reads as %%unsubscribe_url%%


def test_subject_is_one_inert_line() -> None:
    email_ = render_edition(replace(hostile_view(), subject="Round-up\r\nBcc: x@y " + EVIL), BRAND)
    subject = email_.subject
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Round-up Bcc: x@y <script>alert(1)</script>")
    assert "{{ 7*7 }}" in subject and "49" not in subject
    assert "%%" not in subject
    assert paired_bidi(subject) == subject  # no bidi control left that closes nothing


# --- through the backends ---------------------------------------------------------------------


def batch_of(rendered: RenderedEmail) -> Batch:
    recipient = Recipient(
        7,
        "reader@example.com",
        {UNSUBSCRIBE_URL: REAL_UNSUBSCRIBE, MANAGE_URL: REAL_MANAGE},
        {"List-Unsubscribe": f"<{REAL_UNSUBSCRIBE}>"},
    )
    return Batch(
        "b1", 1, rendered.subject, rendered.html, rendered.text, "roundup@news.example", [recipient]
    )


def assert_only_the_footer_links_are_filled(subject: str, html: str, text: str) -> None:
    for real in (REAL_UNSUBSCRIBE, REAL_MANAGE):
        assert real not in subject
        assert html.count(real) == 1 and text.count(real) == 1, real
    footer = {a.text(): a.attributes["href"] for a in LexborHTMLParser(html).css("a")}
    assert footer["Unsubscribe"] == REAL_UNSUBSCRIBE
    assert footer["Choose sections or pause"] == REAL_MANAGE
    assert f"Unsubscribe: {REAL_UNSUBSCRIBE}\n" in text
    assert "%%" not in html and "%%" not in text  # the footer's are filled, no value's is
    assert headline(html).text() == EVIL_SHOWN  # the value still reads %%unsubscribe_url%%


def test_outbox_and_smtp_personalise_never_fill_a_value(tmp_path: Path) -> None:
    rendered = render_edition(hostile_view(), BRAND)
    backend = OutboxBackend(tmp_path)
    with backend:
        (status,) = backend.send_batch(batch_of(rendered))
    raw = Path(str(status.provider_id)).read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert_only_the_footer_links_are_filled(str(msg["Subject"]), html, text)


def test_sendgrid_substitutions_never_fill_a_value() -> None:
    """SendGrid replaces each substitution key in the subject and in every content part (as
    `personalise` does): applied here to the very request body the backend sends."""
    rendered = render_edition(hostile_view(), BRAND)
    body = json.loads(SendGridBackend("SG.test-key").body(batch_of(rendered)))
    (person,) = body["personalizations"]

    def substitute(value: str) -> str:
        for key, real in person["substitutions"].items():
            value = value.replace(key, real)
        return value

    parts = {part["type"]: substitute(part["value"]) for part in body["content"]}
    subject = substitute(person.get("subject", body["subject"]))
    assert_only_the_footer_links_are_filled(subject, parts["text/html"], parts["text/plain"])


# --- any title, any excerpt -------------------------------------------------------------------

TEXT = st.lists(
    st.sampled_from(HOSTILE) | st.text(st.characters(codec="utf-8"), max_size=8), max_size=6
).map("".join)


@cache
def benign_html(has_summary: bool) -> str:
    """The harmless rendering of the same shape (an empty excerpt has no paragraph)."""
    return render_edition(view("T", "S" if has_summary else ""), BRAND).html


@hypothesis_settings(max_examples=150)
@given(title=TEXT, summary=TEXT)
@example(title=EVIL, summary=EVIL)
@example(title="", summary="\x00\ufffe")
def test_any_title_and_excerpt_render_inert(title: str, summary: str) -> None:
    rendered = render_edition(view(title, summary), BRAND)
    assert_inert_html(rendered.html, benign_html(bool(clean(summary))))
    assert headline(rendered.html).text() == clean(title)
    flat = "".join(rendered.text.split())
    assert "".join(text_value(clean(title)).split()) in flat
    assert rendered.text.count("%%") == 4
