"""A person in Debian's Chromium: subscribe -> the confirmation email in the outbox -> confirm ->
preferences -> unsubscribe. Playwright drives the browser; the app runs in uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from subscribers.lifecycle import find_by_email, recipients_for
from subscribers.models import ACTIVE, UNSUBSCRIBED
from subscribers.tokens import UNSUBSCRIBE, make_token
from tests.subscribers_helpers import SECTIONS, Web, link

pytestmark = pytest.mark.browser

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def status(web: Web, address: str) -> str | None:
    with web.session() as session:
        sub = find_by_email(session, address)
        return None if sub is None else sub.status


def test_subscribe_confirm_choose_sections_and_unsubscribe(web: Web, page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    # Subscribe: untick two sections; the honeypot stays empty, off-screen for people.
    console: list[str] = []
    page.on("console", lambda entry: console.append(entry.text))
    page.goto(f"{web.url}/subscribe")
    box = page.locator("#website").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0
    page.fill("#email", "browser.reader@example.com")
    page.fill("#name", "Bea Browser")
    page.uncheck("input[value='Military Industrial Complex']")
    page.uncheck("input[value='Diplomacy']")
    page.click("button[type=submit]")
    page.wait_for_url("**/subscribe/check-inbox")
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert status(web, "browser.reader@example.com") == "pending"

    # The confirmation email, read back from the outbox; its link opens a page with a button.
    (message,) = web.messages()
    assert message["To"] == "browser.reader@example.com"
    page.goto(link(message, "/confirm/"))
    assert status(web, "browser.reader@example.com") == "pending"  # a GET changes nothing
    page.click("text=Confirm my subscription")
    page.wait_for_selector("text=You are subscribed")
    assert status(web, "browser.reader@example.com") == ACTIVE

    # Preferences: keep only Asia, then pause for two weeks.
    page.click("text=Choose sections, pause or unsubscribe")
    page.wait_for_selector("h1:has-text('Your preferences')")
    for section in ("Middle East", "Europe"):
        page.uncheck(f"input[value='{section}']")
    page.click("text=Save sections")
    page.wait_for_selector("text=Your sections are saved.")
    assert page.is_checked("input[value='Asia']") and not page.is_checked("input[value='Europe']")
    page.select_option("#weeks", "2")
    page.click("button:has-text('Pause')")
    page.wait_for_selector("text=Paused until December 4, 2026")
    with web.session() as session:
        assert list(recipients_for(session, SECTIONS, web.clock())) == []
        sub = find_by_email(session, "browser.reader@example.com")
        assert sub is not None and sub.sections == ["Asia"]
        public_id = sub.public_id

    # Unsubscribe through the link every email carries: a page, then the button.
    page.goto(f"{web.url}/u/{make_token(web.keys, UNSUBSCRIBE, public_id, web.clock())}")
    assert status(web, "browser.reader@example.com") == ACTIVE
    page.click("button:has-text('Unsubscribe')")
    page.wait_for_selector("text=You are unsubscribed")
    assert status(web, "browser.reader@example.com") == UNSUBSCRIBED

    # Nothing was fetched from anywhere but the app itself, and the CSP blocked nothing of ours.
    assert requests and all(url.startswith(web.url) for url in requests)
    assert not [line for line in console if "Content Security Policy" in line]


def test_the_pages_fit_a_phone_screen(web: Web, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    phone = context.new_page()
    phone.goto(f"{web.url}/subscribe")
    width = phone.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert width <= 360
