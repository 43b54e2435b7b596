"""mjml-python (MRML, in Rust) against the official compiler (npm `mjml` on node) on the same MJML.

The emails are compiled by MRML, a port. If a new MRML (or a template using something it renders
differently) loses a paragraph or a link, a reader gets a broken email and no other test notices.
So the demo edition, a one-section variant and both confirmation emails are compiled by both, and
what a reader gets must be the same: the visible text (head, style and script dropped, whitespace
normalised), the links (every href, in order) and the images (src and alt, in order). Markup and
CSS may differ; they are the compilers' business.

Node MJML comes from `make test` (tests/services.sh); without it these tests skip, and fail under
CI=true.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.config import Settings
from digest.people.notify import Welcome, notice_sources, welcome_sources
from digest.render.email import compile_mjml, render_sources
from subscribers.optin import ALREADY_SUBSCRIBED, CONFIRMATION, Notice
from tests.mjml_node import compile_node, version
from tests.render.conftest import Demo


@dataclass(frozen=True)
class Seen:
    """What a reader of the HTML gets."""

    text: str
    links: list[str]
    images: list[tuple[str, str]]


def seen(html: str) -> Seen:
    tree = LexborHTMLParser(html)
    for node in tree.css("head, style, script"):
        node.decompose()
    body = tree.body
    assert body is not None
    return Seen(
        text=" ".join(body.text(separator=" ").split()),
        links=[str(a.attributes.get("href")) for a in body.css("[href]")],
        images=[
            (str(img.attributes.get("src")), str(img.attributes.get("alt")))
            for img in body.css("img")
        ],
    )


WELCOME = Welcome(3, "reader@example.com", "pid", "Ada", ["Europe", "Asia"], "https://n.example/a")


def mjml_sources(demo: Demo, settings: Settings) -> dict[str, str]:
    """name -> MJML, as the templates make it for each email we send."""
    notices = {
        "confirmation": Notice(CONFIRMATION, "reader@example.com", "pid", "tok-confirm", 1),
        "already subscribed": Notice(
            ALREADY_SUBSCRIBED, "reader@example.com", "pid", "tok-manage", 2
        ),
    }
    return {
        "demo edition": render_sources(demo.view, demo.branding).mjml,
        "demo edition, Europe only": render_sources(demo.view, demo.branding, ["Europe"]).mjml,
        **{name: notice_sources(settings, n)[1] for name, n in notices.items()},
        "welcome": welcome_sources(settings, WELCOME)[1],
    }


def assert_same(name: str, ours: Seen, official: Seen) -> None:
    if ours.text != official.text:
        diff = difflib.unified_diff(
            official.text.split(" "), ours.text.split(" "), "node mjml", "mjml-python", n=3
        )
        pytest.fail(f"{name}: the visible text differs:\n" + "\n".join(list(diff)[:40]))
    assert ours.links == official.links, f"{name}: the links differ"
    assert ours.images == official.images, f"{name}: the images differ"


def test_mjml_python_and_node_mjml_show_the_same_email(
    demo: Demo, settings: Settings, node_mjml: Path
) -> None:
    sources = mjml_sources(demo, settings)
    results = compile_node(list(sources.values()), node_mjml)
    for (name, source), official in zip(sources.items(), results, strict=True):
        # The official compiler validates; MRML does not. Invalid MJML is the template's fault.
        assert official.errors == [], f"{name}: node mjml {version(node_mjml)}: {official.errors}"
        assert_same(name, seen(compile_mjml(source)), seen(official.html))


def test_the_comparison_sees_what_a_reader_sees(demo: Demo) -> None:
    """Not vacuous: the headlines, the footer and every article link are in what is compared,
    and the comparison tells a lost link or a changed word apart."""
    html = compile_mjml(render_sources(demo.view, demo.branding).mjml)
    email = seen(html)
    for item in demo.view.items:
        assert item.title in email.text
        assert item.url in email.links
    assert "Unsubscribe" in email.text and "%%unsubscribe_url%%" in email.links
    # The logo's alt is the masthead; article images are decoration beside their headline.
    (_logo, logo_alt), *articles = email.images
    assert logo_alt == "The Meridian Review" and articles
    assert all(alt == "" for _, alt in articles)
    assert "mj-column" not in email.text and "{" not in email.text  # no CSS leaked into text
    dropped = seen(html.replace(f'href="{demo.view.items[-1].url}"', 'href="#"', 1))
    assert dropped.links != email.links
    title = demo.view.items[0].title
    reworded = seen(html.replace(f">{title}<", ">Another headline<", 1))
    assert reworded.text != email.text
