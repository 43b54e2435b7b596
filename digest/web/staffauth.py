"""Who is asking: the staff API's guard, and the console session's cookie.

Every staff route depends on `staff` (the router declares it, so no route can forget it; a test
walks the route table): an `Authorization: Bearer` token, or the console's session cookie. With
the cookie, an unsafe request (POST, ...) must also carry the session's CSRF token as the
`X-CSRF-Token` header: a cross-site page can make a browser send the cookie, never the token.
A token is read only from that header (never a query string, which ends up in logs), and no
answer or log line repeats it.

Wrong tokens and forged cookies count against the client IP in the database (`[staff]
token_failures` per `token_window_minutes`, shared by every process); past that, the IP gets
429 before any check, so a guesser learns nothing more.

`role(action)` adds the role check (digest.staff.roles): an editor's approve is a 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from digest.errors import AccessError, NotSignedIn
from digest.staff import roles, sessions, tokens
from digest.staff.roles import Principal
from digest.store.ratelimit import Limit
from digest.web.apierrors import api_error
from digest.web.guards import Refused, retry_after
from digest.web.site import Site, client_ip, site_of

T = TypeVar("T")

COOKIE = "digest_staff"
# A cookie named __Host-... is refused by browsers unless Secure, Path=/ and without Domain:
# no subdomain or plain-http page can plant or overwrite it.
SECURE_COOKIE = "__Host-digest_staff"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `digest staff token EMAIL`. The console's session cookie "
    "works too (with the X-CSRF-Token header on unsafe requests).",
)


def secure(site: Site) -> bool:
    return site.settings.web.base_url.startswith("https://")


def cookie_name(site: Site) -> str:
    return SECURE_COOKIE if secure(site) else COOKIE


def token_failures(site: Site) -> Limit:
    s = site.settings.staff
    return Limit("staff-token", s.token_failures, timedelta(minutes=s.token_window_minutes))


async def call(site: Site, work: Callable[[], T]) -> T:
    """A short database job: inline on SQLite (one writer, sub-millisecond), else a thread."""
    if site.inline_writes:
        return work()
    return await run_in_threadpool(work)


def _refuse(site: Site, exc: AccessError) -> Refused:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Refused(api_error(exc.status, str(exc), None, headers))


async def _throttled(site: Site, ip: str) -> None:
    wait = await call(site, lambda: site.limits.peek(token_failures(site), ip, site.clock()))
    if wait:
        message = "too many failed sign-ins or tokens from this address"
        raise Refused(api_error(429, message, None, {"Retry-After": retry_after(wait)}))


async def _failed(site: Site, ip: str) -> None:
    await call(site, lambda: site.limits.hit(token_failures(site), ip, site.clock()))


def _by_token(site: Site, token: str) -> Principal:
    with site.write() as session:
        return tokens.authenticate(session, token, site.clock())


def _by_session(site: Site, session_id: str) -> Principal:
    with site.write() as session:
        return sessions.resume(session, session_id, site.clock())


async def principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The staff member a request comes from, or NotSignedIn; counts failures per IP."""
    site = site_of(request)
    ip = client_ip(request)
    header = request.headers.get("authorization")
    cookie = request.cookies.get(cookie_name(site))
    if header is None and cookie is None:
        raise NotSignedIn(
            "sign in: send `Authorization: Bearer TOKEN` (`digest staff token EMAIL` makes one) "
            "or sign in at /staff/login"
        )
    await _throttled(site, ip)
    if header is not None:
        if credentials is None:
            await _failed(site, ip)
            raise NotSignedIn("the Authorization header must be `Bearer TOKEN`")
        try:
            return await call(site, lambda: _by_token(site, credentials.credentials))
        except NotSignedIn:
            await _failed(site, ip)
            raise
    assert cookie is not None
    session_id = site.cookies.loads(cookie)
    if session_id is None:
        await _failed(site, ip)  # forged or altered: a guess, counted
        raise NotSignedIn("the session cookie is not valid: sign in again")
    # An expired or ended session is a person who must sign in again, not a guess.
    return await call(site, lambda: _by_session(site, session_id))


async def staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The guard of every staff API route: 401 without a valid credential, 403 for a session's
    unsafe request without its CSRF token."""
    site = site_of(request)
    try:
        who = await principal(request, credentials)
    except AccessError as exc:
        raise _refuse(site, exc) from None
    if (
        who.via == roles.SESSION
        and request.method not in SAFE_METHODS
        and not sessions.csrf_matches(who, request.headers.get(CSRF_HEADER))
    ):
        raise Refused(
            api_error(403, f"a request made with the session cookie needs the {CSRF_HEADER} header")
        )
    request.state.staff = who
    return who


Staff = Annotated[Principal, Depends(staff)]


def role(action: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the staff member, if their role allows `action` (else 403)."""

    async def check(who: Staff) -> Principal:
        try:
            roles.check(who, action)
        except AccessError as exc:
            raise Refused(api_error(exc.status, str(exc))) from None
        return who

    return check


def set_session_cookie(site: Site, response: Response, session_id: str) -> None:
    response.set_cookie(
        cookie_name(site),
        site.cookies.dumps(session_id),
        max_age=site.settings.staff.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=secure(site),
        path="/",
    )


def clear_session_cookie(site: Site, response: Response) -> None:
    response.delete_cookie(cookie_name(site), path="/", secure=secure(site), httponly=True)


def session_id_of(request: Request) -> str | None:
    site = site_of(request)
    cookie = request.cookies.get(cookie_name(site))
    return site.cookies.loads(cookie) if cookie else None
