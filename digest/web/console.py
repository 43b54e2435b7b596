"""The staff console's frame: its two kinds of routers, its pages, its forms' CSRF check, the
message a page shows after a change, and its stylesheet and script.

Every console route sits on one of two routers made here, so none can forget its guard (a
test walks the route table): `pages()` (GET) requires a session, and an anonymous visitor is
sent to the sign-in page; `actions()` (POST) also requires the session's CSRF token as the
form's `csrf_token` field (403 without it). Routes parse, call one core function and render:
the rules live in digest/edition, digest/send, digest/staff and digest/people.

After a change the browser is redirected (303) to the page, which shows what happened once: a
short-lived signed cookie carries the message. A refused change shows the page again at once
with the core's one-line error, the form as it was typed, and the error's HTTP status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

from digest.errors import DigestError
from digest.render.email import templates_dir
from digest.staff import roles
from digest.staff.dashboard import local
from digest.staff.roles import Principal
from digest.staff.sessions import csrf_matches
from digest.web.apierrors import status_of
from digest.web.guards import Refused, forbidden
from digest.web.pages import environment
from digest.web.site import Site, site_of
from digest.web.staff import SignedIn, signed_in
from digest.web.staffauth import secure

PREFIX = "/staff"
FLASH_COOKIE = "digest_staff_flash"
FLASH_MAX_AGE_S = 120
FLASH_SALT = "digest.staff-flash"
# Messages after a change: a few short lines (a cookie holds at most 4 KB).
FLASH_LINES, FLASH_CHARS = 6, 400
NAV = (
    ("dashboard", "Dashboard", "/staff"),
    ("history", "History", "/staff/history"),
    ("subscribers", "Subscribers", "/staff/subscribers"),
)
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}


async def console_csrf(request: Request, who: SignedIn, csrf_token: str = Form("")) -> None:
    """Every console form: the session's own CSRF token (a cross-site page can make a browser
    send the session cookie, never this token)."""
    if not csrf_matches(who, csrf_token):
        raise Refused(forbidden(site_of(request), request))


def pages() -> APIRouter:
    """A router for console pages (GET): a session is required."""
    return APIRouter(prefix=PREFIX, dependencies=[Depends(signed_in)], include_in_schema=False)


def actions() -> APIRouter:
    """A router for console forms (POST): a session and its CSRF token are required."""
    return APIRouter(
        prefix=PREFIX,
        dependencies=[Depends(signed_in), Depends(console_csrf)],
        include_in_schema=False,
    )


router = pages()


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """The console's stylesheet and script: files from our own origin (the CSP allows no
    inline script and nothing from elsewhere)."""
    kind = ASSETS.get(name)
    if kind is None:
        return Response("no such file\n", status_code=404, media_type="text/plain")
    return FileResponse(_asset_dir() / name, media_type=kind)


@cache
def _asset_dir() -> Path:
    return templates_dir() / "web" / "staff"


def may(who: Principal, action: str) -> bool:
    return roles.allowed(who.role, action)


def render(
    request: Request,
    who: Principal,
    template: str,
    *,
    status: int = 200,
    section: str = "",
    error: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A console page: the frame (navigation, who is signed in, sign out), the messages of
    the change just made, and `template`'s content."""
    site = site_of(request)
    messages = _read_flash(site, request)
    nonce = site.csrf.nonce_for(request)  # the sign-out form: the site's CSRF pair
    html = (
        environment()
        .get_template(f"staff/{template}")
        .render(
            publication=site.settings.publication.name,
            title=site.settings.newsletter.title,
            who=who,
            may={a: may(who, a) for a in roles.ACTIONS},
            csrf_token=who.csrf_token or "",
            logout_token=site.csrf.token(nonce),
            nav=NAV,
            section=section,
            messages=messages,
            error=error,
            when=lambda moment: local_time(site, moment),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    site.csrf.set_cookie(response, nonce)
    if messages:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX, secure=secure(site), httponly=True)
    return response


def local_time(site: Site, moment: datetime | str | None) -> str:
    """A moment (or its ISO text, as the core's plain data carries it) on the publication's
    clock, as staff read it."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return local(site.settings, moment)


def done(request: Request, path: str, *messages: str, warnings: Sequence[str] = ()) -> Response:
    """After a change: 303 to `path` (a page of ours), which then shows the messages once."""
    site = site_of(request)
    response: RedirectResponse = site.redirect(path)
    lines = [("ok", m) for m in messages] + [("warn", w) for w in warnings]
    lines = [(kind, text[:FLASH_CHARS]) for kind, text in lines[:FLASH_LINES]]
    if lines:
        response.set_cookie(
            FLASH_COOKIE,
            _flash(site).dumps(lines),
            max_age=FLASH_MAX_AGE_S,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure(site),
        )
    return response


def refused_status(exc: DigestError) -> int:
    """The HTTP status of a core refusal, as the API answers it (404, 409, 422, ...)."""
    return getattr(exc, "status_override", None) or status_of(exc)


def _flash(site: Site) -> URLSafeSerializer:
    return URLSafeSerializer(list(reversed(site.keys)), salt=FLASH_SALT)


def _read_flash(site: Site, request: Request) -> list[tuple[str, str]]:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return []
    try:
        lines = _flash(site).loads(value)
    except BadSignature:
        return []
    if not isinstance(lines, list):
        return []
    return [
        (str(kind), str(text))
        for kind, text in (line for line in lines if isinstance(line, list) and len(line) == 2)
    ]
