"""The API docs in Debian's Chromium: a staff member signs in, opens /api/docs, and Swagger UI
(served by us) shows the API; the page's CSP lets nothing load from another origin and nothing
it needs is blocked; "Try it out" with the session works (the page adds the CSRF header)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.staff_helpers import PASSWORD, PUBLISHER_EMAIL, StaffWeb
from tests.web.test_browser import ARGS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield launched
        launched.close()


def test_a_publisher_signs_in_and_reads_the_api_docs(staff_web: StaffWeb, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda entry: console.append(f"{entry.type}: {entry.text}"))
    try:
        page.goto(f"{staff_web.web.url}/staff/login?next=/api/docs")
        page.fill("#email", PUBLISHER_EMAIL)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/api/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/editions/{edition_id}/approve" in p for p in paths)
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("The Weekly")
        # Try it out: GET /api/me with the session cookie, from the page itself.
        me = page.evaluate(
            "async () => (await fetch('/api/me', {credentials: 'same-origin'})).json()"
        )
        assert me["email"] == PUBLISHER_EMAIL and me["via"] == "session"
        status = page.evaluate(
            """async (e) => {
                const csrf = document.querySelector('meta[name="csrf-token"]').content;
                const r = await fetch(`/api/editions/${e}/intro`, {method: 'POST',
                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                    body: JSON.stringify({text: 'From the docs page'})});
                return r.status;
            }""",
            staff_web.edition_id,
        )
        assert status == 200
    finally:
        context.close()
    origin = staff_web.web.url
    assert all(url.startswith((origin, "data:")) for url in requests), requests
    blocked = [line for line in console if "Content Security Policy" in line]
    assert blocked == [], blocked
