"""The email as a reader sees it, in Debian's Chromium (issue 13): the demo edition and a
one-section reader's variant at 600 px and 375 px, light and dark, then with images blocked; the
confirmation and welcome emails, a wide logo and the archive's web copy on a phone in both
schemes.

Everything is measured in the page: each visible text's contrast against the background
actually behind it (the nearest opaque one up the tree), its font size, the height of every
standalone link (a thumb's 44 px), and horizontal scrolling. Images are served from memory (a
grey PNG of the right size) or blocked; nothing leaves the machine. One browser for the module.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from digest.branding import branding
from digest.colors import contrast
from digest.config import Settings, load_settings
from digest.edition.build import build_edition
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.people.notify import Welcome, render_notice, render_welcome
from digest.render.email import WebCopy, render_edition
from digest.render.placeholders import fill_preview
from digest.store.db import make_engine, session_factory, upgrade
from subscribers.optin import CONFIRMATION, Notice
from tests.conftest import DEMO_NOW, ROOT, TEST_SECRET

pytestmark = pytest.mark.browser

PHONE, DESKTOP = 375, 600
MIN_CONTRAST, MIN_FONT_PX, MIN_TAP_PX = 4.5, 14, 44

# Every problem a reader would meet, measured in the page; an empty list for each is a pass.
AUDIT = (Path(__file__).with_name("audit.js")).read_text(encoding="utf-8")
LIMITS = {"contrast": MIN_CONTRAST, "font": MIN_FONT_PX, "tap": MIN_TAP_PX}


def png(width: int, height: int) -> bytes:
    """A grey PNG: the images of the email, served from memory."""
    raw = b"".join(b"\x00" + b"\x88\x88\x88" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


LOGO, PHOTO = png(720, 160), png(1104, 620)  # both sharp: twice their width in the email


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("design")
    return load_settings(
        ROOT / "digest.toml",
        database={"url": f"sqlite:///{folder / 'digest.db'}"},
        delivery={"backend": "outbox", "outbox_dir": str(folder / "outbox")},
        secret_key=TEST_SECRET,
    )


@pytest.fixture(scope="module")
def emails(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo week's edition (all sections, and Europe alone), the confirmation and the
    welcome, as HTML files with sample links."""
    settings = demo_settings
    engine = make_engine(settings.database_url)
    upgrade(engine)
    factory = session_factory(engine)
    edition_id = build_edition(factory, settings, DEMO_NOW).edition.id
    with factory() as session:
        view = edition_view(get_edition(session, edition_id))
    engine.dispose()
    look, base = branding(settings), settings.web.base_url
    folder = tmp_path_factory.mktemp("emails")
    pages = {
        "edition": render_edition(view, look).html,
        "europe": render_edition(view, look, ["Europe"]).html,
        # A wide logo (its image wider than a phone's column) must not push the page sideways.
        "wide-logo": render_edition(view, replace(look, logo_width=500), ["Asia"]).html,
        # The archive's page of the edition (no personal links: Subscribe, Past editions).
        "web-copy": render_edition(
            view, look, web_copy=WebCopy(f"{base}/subscribe", f"{base}/archive/")
        ).html,
        "confirm": render_notice(
            settings, Notice(CONFIRMATION, "reader@example.com", "p" * 32, "t" * 80, 1)
        ).html,
        "welcome": render_welcome(
            settings, Welcome(1, "reader@example.com", "p" * 32, "Ada", ["Europe", "Asia"])
        ).html,
    }
    found = {}
    for name, html in pages.items():
        path = folder / f"{name}.html"
        path.write_text(fill_preview(html, base), encoding="utf-8")
        found[name] = path
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@contextmanager
def open_email(
    browser: Browser, path: Path, width: int, scheme: str, images: bool = True
) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": width, "height": 800}, color_scheme=scheme, java_script_enabled=True
    )
    page = context.new_page()

    def serve(route: Route) -> None:
        request = route.request
        if request.url == path.as_uri():
            route.continue_()
        elif images and request.resource_type == "image":
            body = LOGO if "brand" in request.url else PHOTO
            route.fulfill(status=200, content_type="image/png", body=body)
        else:
            route.abort()

    page.route("**/*", serve)
    page.goto(path.as_uri(), wait_until="load")
    try:
        yield page
    finally:
        context.close()


def audit(page: Page) -> dict[str, Any]:
    result = page.evaluate(AUDIT, LIMITS)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("name", ["edition", "europe"])
def test_the_edition_reads_well(
    browser: Browser, emails: dict[str, Path], name: str, width: int, scheme: str
) -> None:
    with open_email(browser, emails[name], width, scheme) as page:
        found = audit(page)
        assert found["scroll"] <= 0, f"scrolls sideways by {found['scroll']} px"
        assert not found["contrast"], "text below 4.5:1:\n" + "\n".join(found["contrast"])
        if width == PHONE:
            assert not found["small"], "text under 14 px:\n" + "\n".join(found["small"])
            assert not found["short"], "links under 44 px:\n" + "\n".join(found["short"])
        # The dark palette is the one in force: the card is dark, the headlines light.
        card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
        assert (card == "rgb(28, 31, 36)") == (scheme == "dark"), card


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_with_images_blocked_the_masthead_still_reads(
    browser: Browser, emails: dict[str, Path], scheme: str
) -> None:
    with open_email(browser, emails["edition"], PHONE, scheme, images=False) as page:
        logo = page.locator("img[alt='The Meridian Review']").first
        assert logo.evaluate("img => img.complete && img.naturalWidth === 0")  # not loaded
        style = logo.evaluate(
            "img => { const s = getComputedStyle(img); return [s.fontSize, s.color]; }"
        )
        assert float(style[0].removesuffix("px")) >= 20
        box = logo.bounding_box()
        assert box is not None and box["height"] >= 32 and box["width"] >= 100
        ground = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
        assert contrast(hex_of(style[1]), hex_of(ground)) >= MIN_CONTRAST
        # Article images are decoration beside their headline: nothing of them is shown.
        alts = page.eval_on_selector_all(
            "img:not([alt='The Meridian Review'])", "imgs => imgs.map(i => i.alt)"
        )
        assert alts and set(alts) == {""}
        found = audit(page)
        assert not found["contrast"] and not found["small"] and found["scroll"] <= 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["confirm", "welcome", "wide-logo", "web-copy"])
def test_the_other_emails_and_pages_read_well_on_a_phone(
    browser: Browser, emails: dict[str, Path], name: str, scheme: str
) -> None:
    with open_email(browser, emails[name], PHONE, scheme) as page:
        found = audit(page)
        assert found["scroll"] <= 0, f"scrolls sideways by {found['scroll']} px"
        assert not found["contrast"], "\n".join(found["contrast"])
        assert not found["small"], "\n".join(found["small"])
        assert not found["short"], "\n".join(found["short"])


def hex_of(css: str) -> str:
    """'rgb(20, 33, 61)' -> '#14213d'."""
    red, green, blue = (int(v) for v in css.removeprefix("rgb(").removesuffix(")").split(","))
    return f"#{red:02x}{green:02x}{blue:02x}"
