"""`digest preview`'s files: an edition's variant (or the confirmation or welcome email) rendered
with sample links, written as HTML and text, and photographed in Chromium at a desktop and a
phone width, light and dark, beside them.

The screenshots are what a reviewer looks at before approving: the design at 600 and 375 px in
both of a mail app's colour schemes. They need Chromium (Debian's `chromium`) and the
`playwright` package; without either, the preview says so in one line and writes the rest.
Playwright is imported only here, when a screenshot is taken (the CLI starts without it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.branding import branding
from digest.config import Settings
from digest.errors import UsageError
from digest.people.notify import Welcome, render_notice, render_welcome
from digest.render.email import EditionView, Mail, render_edition
from digest.render.placeholders import PREVIEW_TOKEN, fill_preview
from subscribers.optin import ALREADY_SUBSCRIBED, CONFIRMATION, Notice

if TYPE_CHECKING:
    from playwright.sync_api import Route

WIDTHS = (600, 375)  # a desktop mail app's column, a phone
SCHEMES = ("light", "dark")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
PAGE_TIMEOUT_MS = 15_000  # images that do not arrive by then are left out of the picture


# The emails to one person that `digest preview --email` shows, with sample links.
MAILS = ("confirm", "already", "welcome")
SAMPLE_ADDRESS = "reader@example.com"


@dataclass
class Preview:
    subject: str
    html_path: Path
    text_path: Path
    html_bytes: int
    text_bytes: int
    screenshots: list[Path] = field(default_factory=list)
    # Why there are no screenshots (no Chromium, no playwright, it did not start); None: taken.
    no_screenshots: str | None = None


def write_preview(
    settings: Settings,
    view: EditionView,
    sections: Sequence[str],
    out: Path,
    stem: str,
    *,
    screenshots: bool = True,
    load_images: bool = True,
) -> Preview:
    """Render `sections` of `view` into `out`/`stem`.html and .txt (sample links where a send
    puts each subscriber's own), then the PNGs when `screenshots` and Chromium is there."""
    rendered = render_edition(view, branding(settings), sections)
    mail = Mail(rendered.subject, rendered.html, rendered.text)
    return _write(settings, mail, out, stem, screenshots, load_images)


def write_mail_preview(
    settings: Settings, kind: str, out: Path, *, screenshots: bool = True
) -> Preview:
    """The confirmation ("confirm"), the note to someone already subscribed ("already") or the
    welcome, as a made-up reader of every section would get it, into `out`/`kind`.html."""
    if kind not in MAILS:
        raise UsageError(f"--email {kind!r}: one of {', '.join(MAILS)}")
    if kind == "welcome":
        mail = render_welcome(settings, Welcome(0, SAMPLE_ADDRESS, PREVIEW_TOKEN, None, None))
    else:
        notice_kind = CONFIRMATION if kind == "confirm" else ALREADY_SUBSCRIBED
        notice = Notice(notice_kind, SAMPLE_ADDRESS, PREVIEW_TOKEN, PREVIEW_TOKEN, 0)
        mail = render_notice(settings, notice)
    return _write(settings, mail, out, kind, screenshots, load_images=True)


def _write(
    settings: Settings, mail: Mail, out: Path, stem: str, screenshots: bool, load_images: bool
) -> Preview:
    base_url = settings.web.base_url
    html, text = fill_preview(mail.html, base_url), fill_preview(mail.text, base_url)
    html_path, text_path = out / f"{stem}.html", out / f"{stem}.txt"
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
        text_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the preview there: {exc.strerror}") from None
    preview = Preview(mail.subject, html_path, text_path, len(html.encode()), len(text.encode()))
    if not screenshots:
        preview.no_screenshots = "not taken (--no-screenshots)"
        return preview
    chromium = find_chromium()
    if chromium is None:
        preview.no_screenshots = (
            "not taken: Chromium is not installed (Debian: apt-get install chromium)"
        )
        return preview
    try:
        preview.screenshots = take_screenshots(html_path, chromium, load_images=load_images)
    except ScreenshotError as exc:
        preview.no_screenshots = f"not taken: {exc}"
    return preview


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class ScreenshotError(Exception):
    """Chromium or playwright could not take the pictures (the preview's files stand)."""


def take_screenshots(html_path: Path, chromium: str, *, load_images: bool = True) -> list[Path]:
    """`html_path` at each width in each scheme, full length, as `<stem>-<width>-<scheme>.png`
    beside it. The page runs no script and fetches nothing but its images (none when not
    `load_images`): an email's HTML holds text from the publication's sources."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise ScreenshotError(
            "the playwright package is not installed (pip install playwright)"
        ) from None
    shots = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=_chromium_args())
            try:
                for scheme in SCHEMES:
                    shots += _shoot(browser, html_path, scheme, load_images)
            finally:
                browser.close()
    except Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScreenshotError(f"Chromium failed: {first}") from None
    return shots


def _chromium_args() -> list[str]:
    # Chromium refuses to start its sandbox as root (containers, CI); anyone else keeps it.
    args = ["--disable-gpu", "--no-first-run"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def _shoot(browser: Any, html: Path, scheme: str, images: bool) -> list[Path]:
    """The page at each width in one colour scheme."""
    from playwright.sync_api import TimeoutError as PageTimeout

    context = browser.new_context(color_scheme=scheme, java_script_enabled=False)
    shots = []
    try:
        page = context.new_page()
        page.route("**/*", lambda route: _allow(route, html, images))
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            with contextlib.suppress(PageTimeout):  # a slow image server: shows what arrived
                page.goto(html.resolve().as_uri(), wait_until="load", timeout=PAGE_TIMEOUT_MS)
            png = html.with_name(f"{html.stem}-{width}-{scheme}.png")
            page.screenshot(path=str(png), full_page=True)
            shots.append(png)
    finally:
        context.close()
    return shots


def _allow(route: Route, html: Path, images: bool) -> None:
    request = route.request
    page = request.url == html.resolve().as_uri()
    image = request.resource_type == "image" and request.url.startswith("https://")
    if page or (images and image):
        route.continue_()
    else:
        route.abort()
