"""The staff console in Debian's Chromium (Playwright): a publisher signs in, reorders (by drag
and drop) and drops an article, edits the intro, looks at the email on a 375 px phone, sends a
test (it arrives in the outbox), approves, starts the send, watches its progress reach 100 %,
and opens the archive page from the link in the email a subscriber got. Then axe-core checks
every staff and public page: no serious or critical accessibility violation.

The app runs in uvicorn on 127.0.0.1 with a few hundred subscribers; every wait is on a
condition with a generous deadline (a loaded two-core machine), never a fixed sleep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from digest.store.models import EditionItem
from subscribers.lifecycle import find_by_email
from subscribers.tokens import MANAGE, UNSUBSCRIBE, make_token
from tests.send_helpers import add_subscribers
from tests.staff_helpers import PASSWORD, PUBLISHER_EMAIL, StaffWeb, sign_in, start_staff_web
from tests.subscribers_helpers import read_outbox, text_of
from tests.web.test_browser import ARGS

pytestmark = pytest.mark.browser

WAIT_MS = 60_000  # any one step, on a busy machine
SEND_MS = 180_000  # the whole send of ~300 recipients
SUBSCRIBERS = 300


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console_web(tmp_path: Path, db_path: Path) -> Iterator[StaffWeb]:
    """The demo week's draft, a publisher and an editor, and a few hundred subscribers."""
    running = start_staff_web(tmp_path, db_path)
    add_subscribers(running.web.factory, SUBSCRIBERS, running.web.clock(), start=100)
    try:
        yield running
    finally:
        running.close()


def offline(context: BrowserContext, origin: str) -> list[str]:
    """Requests to anywhere but the app are refused (the email's images name the publication's
    site); returns the list of what was asked for, to check."""
    asked: list[str] = []

    def handle(route: Route) -> None:
        asked.append(route.request.url)
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", handle)
    return asked


def signed_in_page(context: BrowserContext, staff_web: StaffWeb) -> Page:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{staff_web.web.url}/staff")
    page.wait_for_url("**/staff/login?next=%2Fstaff")
    page.fill("#email", PUBLISHER_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    return page


def reading_order(staff_web: StaffWeb) -> list[int]:
    with staff_web.web.session() as session:
        rows = session.query(EditionItem).filter_by(edition_id=staff_web.edition_id)
        return [i.article_id for i in sorted(rows, key=lambda i: i.position)]


def flash(page: Page, text: str) -> None:
    page.wait_for_selector(f"[role=status]:has-text({text!r})")


def test_a_publisher_puts_out_the_edition_in_the_browser(
    console_web: StaffWeb, browser: Browser
) -> None:
    web = console_web.web
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    asked = offline(context, web.url)
    messages: list[str] = []
    try:
        page = signed_in_page(context, console_web)
        page.on("console", lambda entry: messages.append(f"{entry.type}: {entry.text}"))
        page.click("text=Open edition 1")
        page.wait_for_selector("h1:has-text('Edition 1')")

        # Reorder: drag the third article onto the second.
        before = reading_order(console_web)
        third = page.locator(f"li.item[data-article='{before[2]}']")
        third.drag_to(page.locator(f"li.item[data-article='{before[1]}']"))
        flash(page, f"Moved article {before[2]} to position 2.")
        assert reading_order(console_web)[1] == before[2]

        # Drop one: the next best takes its place.
        dropped = reading_order(console_web)[3]
        page.click(f"li.item[data-article='{dropped}'] button:has-text('Drop')")
        flash(page, f"Dropped article {dropped}")
        assert dropped not in reading_order(console_web)
        assert page.locator(f"li.item[data-article='{dropped}']").count() == 0

        # The intro.
        intro = "Our editors' pick of a busy week in Brussels, Geneva and Seoul."
        page.fill("#intro", intro)
        page.click("button:has-text('Save the intro')")
        flash(page, "Saved the intro.")

        # The email on a phone: the 375 px frame shows the new intro, nothing wider than it.
        phone = page.locator("iframe.phone")
        phone.scroll_into_view_if_needed()
        box = phone.bounding_box()
        assert box is not None and 375 <= box["width"] <= 379  # 375 px and its border
        inside = page.frame_locator("iframe.phone")
        inside.get_by_text(intro).last.wait_for()  # the hidden preheader holds it too
        body = inside.locator("body").bounding_box()
        assert body is not None and body["width"] <= 375
        wide = inside.locator("table, img, div").evaluate_all(
            "els => els.filter(e => e.getBoundingClientRect().right > 376).length"
        )
        assert wide == 0

        # A test to the desk: it arrives in the outbox, marked as a test.
        page.fill("#test-to", "desk@meridianreview.example")
        page.click("button:has-text('Send a test')")
        flash(page, "desk@meridianreview.example: accepted")
        (test,) = read_outbox(web.outbox / "edition-1-tests")
        assert test["To"] == "desk@meridianreview.example"
        assert test["Subject"].startswith("[TEST] ") and intro in text_of(test)

        # Approve, start the send, watch it reach 100 %.
        page.click("button:has-text('Approve edition 1')")
        flash(page, "Approved")
        page.click("button:has-text('Start the send')")
        flash(page, f"The send has started: {SUBSCRIBERS + 6} recipients planned.")
        page.wait_for_selector("#progress [data-field=percent]:text-is('100')", timeout=SEND_MS)
        page.wait_for_selector(".badge.status-sent", timeout=SEND_MS)  # the page reloads
        assert page.locator("#progress [data-count=accepted]").inner_text() == "306"
        assert page.locator("a:has-text('Who did not get it (CSV)')").count() == 1

        # A subscriber's email links its archive page; the page is the edition as sent.
        sent = read_outbox(web.outbox / "edition-1")
        assert len(sent) == SUBSCRIBERS + 6
        archive = view_in_browser(sent[0])
        assert archive == f"{web.url}/archive/2026-11-20"
        page.goto(archive)
        page.get_by_text(intro).last.wait_for()
        assert page.title() == "The Weekly Round-up: November 20, 2026"
    finally:
        context.close()
    blocked = [line for line in messages if "Content Security Policy" in line]
    assert blocked == [], blocked
    # The console itself loaded nothing from elsewhere (the previews' images are the email's).
    assert all(url.startswith(web.url) for url in asked if "/staff/" in url or url == web.url)


def view_in_browser(message: EmailMessage) -> str:
    found = re.search(r"(https?://\S+/archive/\S+)", text_of(message))
    assert found is not None, "no archive link in the email"
    return found.group(1)


# --- accessibility --------------------------------------------------------------------------


def violations(page: Page, axe: Path) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(axe))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {iframes: false, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def staff_pages(staff_web: StaffWeb) -> list[str]:
    e = staff_web.edition_id
    staff_web.web.confirm("reader@example.com")
    with staff_web.web.session() as session:
        reader = find_by_email(session, "reader@example.com")
        assert reader is not None
        public_id = reader.public_id
    return [
        "/staff",
        f"/staff/editions/{e}",
        f"/staff/editions/{e}?variant=Europe,Asia",
        f"/staff/preview/{e}",
        "/staff/history",
        "/staff/subscribers",
        "/staff/subscribers?q=reader",
        f"/staff/subscribers/{public_id}",
        f"/staff/subscribers/{public_id}/erase",
        "/staff/editions/999",
        "/staff/nothing-here",
    ]


def public_pages(staff_web: StaffWeb) -> list[str]:
    web = staff_web.web
    web.subscribe("pending@example.com")
    confirm = web.confirm_link()
    with web.session() as session:
        reader = find_by_email(session, "reader@example.com")
        assert reader is not None
        public_id = reader.public_id
    now = web.clock()
    return [
        "/",
        "/subscribe",
        "/subscribe/check-inbox",
        confirm,
        f"/manage/{make_token(web.keys, MANAGE, public_id, now)}",
        f"/u/{make_token(web.keys, UNSUBSCRIBE, public_id, now)}",
        "/u/not-a-token",
        "/archive/",
        "/archive/2026-11-20",
        "/nothing-here",
        "/staff/login",
    ]


def test_no_serious_or_critical_accessibility_violation_on_any_page(
    console_web: StaffWeb, browser: Browser, axe_path: Path
) -> None:
    staff_web = console_web
    # Everything on show: a sent edition (its archive page, history numbers) and a draft.
    publisher = sign_in(staff_web)
    e = staff_web.edition_id
    publisher.submit(f"/staff/editions/{e}/approve")
    publisher.submit(f"/staff/editions/{e}/send")
    assert staff_web.web.site.sends.wait(e, timeout_s=SEND_MS / 1000)
    paths = staff_pages(staff_web) + public_pages(staff_web)
    context = browser.new_context(bypass_csp=True)  # to inject axe; the pages' CSP is tested
    offline(context, staff_web.web.url)
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        anonymous = context.new_page()
        anonymous.set_default_timeout(WAIT_MS)
        for path in [p for p in paths if not p.startswith("/staff")] + ["/staff/login"]:
            anonymous.goto(staff_web.web.url + path)
            found[path] = violations(anonymous, axe_path)
        page = signed_in_page(context, staff_web)
        for path in [p for p in paths if p.startswith("/staff") and p != "/staff/login"]:
            page.goto(staff_web.web.url + path)
            assert page.url.startswith(staff_web.web.url + path.split("?")[0]), page.url
            found[path] = violations(page, axe_path)
    finally:
        context.close()
    assert len(found) == len(set(paths))
    bad = [
        f"{path}: {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'])}"
        for path, listed in found.items()
        for v in listed
    ]
    assert not bad, "\n".join(bad)
