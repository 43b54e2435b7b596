"""The console's door: `/staff/login` and `/staff/logout`, and `signed_in`, which every console
page depends on (digest/web/console.py); the console's pages are in the console_* modules.

The sign-in form carries the site's CSRF pair (the visitor has no session yet); failures count
per account and per IP in the database (digest.staff.signin). The session cookie is HttpOnly,
SameSite=Lax, Secure and `__Host-` under https (digest/web/staffauth.py).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.errors import NotSignedIn
from digest.staff import sessions
from digest.staff.roles import Principal
from digest.staff.signin import SignIn, sign_in, sign_out
from digest.web.guards import FORM, Refused, retry_after
from digest.web.site import Site, client_ip, site_of
from digest.web.staffauth import (
    call,
    clear_session_cookie,
    session_id_of,
    set_session_cookie,
)

router = APIRouter()

LOGIN = "/staff/login"
HOME = "/staff"


def _login_page(
    site: Site,
    request: Request,
    status: int = 200,
    *,
    error: str | None = None,
    email: str = "",
    next_path: str = HOME,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return site.pages.render(
        request,
        "staff_login.html",
        status_code=status,
        headers=headers,
        error=error,
        email=email,
        next=next_path,
    )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of ours, never another site (no open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return HOME


async def signed_in(request: Request) -> Principal:
    """For console pages: the signed-in member, or a redirect to the sign-in page."""
    site = site_of(request)
    session_id = session_id_of(request)
    if session_id is not None:
        try:
            return await call(site, lambda: _resume(site, session_id))
        except NotSignedIn:
            pass
    # Back to the page asked for after signing in; a form's POST cannot be repeated by a
    # redirect, so its sender goes to the dashboard.
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = wanted if request.method in ("GET", "HEAD") else HOME
    target = f"{LOGIN}?{urlencode({'next': back})}"
    raise Refused(RedirectResponse(target, status_code=303))


def _resume(site: Site, session_id: str) -> Principal:
    with site.write() as session:
        return sessions.resume(session, session_id, site.clock())


SignedIn = Annotated[Principal, Depends(signed_in)]


@router.get(LOGIN, include_in_schema=False)
def login_page(request: Request, next: str = HOME) -> HTMLResponse:
    return _login_page(site_of(request), request, next_path=safe_next(next))


@router.post(LOGIN, include_in_schema=False, dependencies=FORM)
async def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(HOME),
) -> Response:
    site = site_of(request)
    target = safe_next(next)
    result = await _sign_in(site, email, password, client_ip(request))
    if result.wait_s:
        minutes = max(1, round(result.wait_s / 60))
        message = f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
        headers = {"Retry-After": retry_after(result.wait_s)}
        return _login_page(
            site, request, 429, error=message, email=email, next_path=target, headers=headers
        )
    if not result.ok or result.session_id is None:
        message = "Wrong email address or password."
        return _login_page(site, request, 401, error=message, email=email, next_path=target)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(site, response, result.session_id)
    return response


async def _sign_in(site: Site, email: str, password: str, ip: str) -> SignIn:
    # argon2 takes tens of milliseconds of CPU: never on the event loop.
    return await run_in_threadpool(
        sign_in, site.write, site.limits, site.settings.staff, email, password, ip, site.clock()
    )


@router.post("/staff/logout", include_in_schema=False, dependencies=FORM)
async def logout(request: Request) -> Response:
    site = site_of(request)
    session_id = session_id_of(request)
    if session_id is not None:
        await call(site, lambda: sign_out(site.write, session_id))
    response = RedirectResponse(LOGIN, status_code=303)
    clear_session_cookie(site, response)
    return response
