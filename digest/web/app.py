"""`create_app(settings)`: the ASGI app served by `digest serve` (uvicorn).

Public pages (subscribe, confirm, preferences, unsubscribe, the archive), the RFC 8058 one-click
endpoint, the JSON subscribe API, the ESP webhooks, and the staff side: sign-in, the staff
console (digest/web/console*.py), the staff API with its schema and docs. Every response
carries the security headers of digest/web/security.py (no-referrer, a CSP that allows nothing
third-party, no caching, with a few pages' own: the archive's, the console's, the API docs').

Every /api route needs a staff token or session (digest/web/staffauth.py) except the public
allowlist below; tests/web/test_api_access.py walks the route table to hold that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.backends import get_backend
from digest.backends.base import EmailBackend
from digest.config import Settings
from digest.errors import DigestError
from digest.people.audience import register_consent
from digest.store.db import open_database, session_factory
from digest.web import (
    api,
    api_docs,
    api_editions,
    api_staff,
    archive,
    console,
    console_editions,
    console_pages,
    console_people,
    manage,
    public,
    staff,
    unsubscribe,
    webhooks,
)
from digest.web.apierrors import api_error, digest_error, validation_error
from digest.web.bodies import BodyLimits
from digest.web.guards import Refused, answer_refused
from digest.web.oneclick import OneClick
from digest.web.pages import stylesheet
from digest.web.security import SecurityMiddleware, page_overrides, security_headers
from digest.web.site import Site, site_of


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    backend: EmailBackend | None = None,
) -> FastAPI:
    """The app. `clock` and `backend` are for tests (a frozen now, a recording mailer).
    Configuration mistakes (no DIGEST_SECRET_KEY, a backend without its key, a consent text
    changed under an old version) fail here, at start, not on someone's first request."""
    # No redirect_slashes: Starlette builds that redirect from the request's Host header, so
    # `GET /subscribe/` with `Host: evil.example` would send people there. Every redirect we
    # make starts with [web] base_url (Site.redirect).
    app = FastAPI(
        title="digest",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=_lifespan,
    )
    engine = open_database(settings.database_url)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    if backend is None:
        get_backend(settings)  # validates the delivery settings now; each email builds its own
    register_consent(app.state.sessions, settings, (clock or (lambda: datetime.now(UTC)))())
    app.state.site = Site.build(
        settings,
        app.state.sessions,
        sqlite=engine.dialect.name == "sqlite",
        clock=clock,
        backend=backend,
    )
    # Starlette runs the last added outermost: the one-click endpoint sits inside the body
    # limits, and everything inside the headers (a 413, a 408 and a 500 carry them too).
    app.add_middleware(OneClick, site=app.state.site)
    app.add_middleware(BodyLimits, body_timeout_s=settings.web.body_timeout_s, answer=_error_page)
    https = settings.web.base_url.startswith("https://")
    app.add_middleware(
        SecurityMiddleware,
        headers=security_headers(stylesheet(), https=https),
        overrides=page_overrides(stylesheet()),
    )
    app.add_exception_handler(StarletteHTTPException, _error_page)
    app.add_exception_handler(Refused, answer_refused)  # a guard's page or JSON body, as is
    app.add_exception_handler(DigestError, digest_error)  # the core's refusals, as JSON
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for module in (public, manage, unsubscribe, api, archive, staff):
        app.include_router(module.router)
    for router in CONSOLE:  # every route behind a staff session (digest/web/console.py)
        app.include_router(router)
    for module in (api_editions, api_staff, api_docs):  # every route behind staffauth.staff
        app.include_router(module.router)
    app.include_router(webhooks.router())  # POST /webhooks/sendgrid (issue 5)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# The /api routes anyone may call: the subscribe API for the publication's own site.
PUBLIC_API = frozenset({"/api/subscribe", "/api/resend", "/api/consent"})
# The staff console's routers: pages need a session, actions its CSRF token too.
CONSOLE = (
    console.router,
    console_pages.router,
    console_editions.pages,
    console_editions.actions,
    console_people.pages,
    console_people.actions,
)
# The /staff routes anyone may call: signing in and out (the sign-in form's CSRF pair).
PUBLIC_STAFF = frozenset({"/staff/login", "/staff/logout"})


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, sends this process delivers finish their batch and stop (resumable)."""
    yield
    site: Site = app.state.site
    await run_in_threadpool(site.sends.stop)
    await run_in_threadpool(site.drain)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """The API's 422 names the field; a console form a page saying what is wrong; elsewhere
    FastAPI's own answer."""
    if request.url.path.startswith("/api/"):
        return await validation_error(request, exc)
    if request.url.path.startswith("/staff/"):
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return site_of(request).pages.render(
            request,
            "error.html",
            status_code=422,
            heading="That request was not complete",
            message=f"{field or 'the request'}: {first.get('msg', 'invalid')}",
            back="/staff",
        )
    return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]


async def _error_page(request: Request, exc: Exception) -> Response:
    """People get a page for a mistyped address; the JSON API its own error body; other
    clients FastAPI's JSON. The exception's headers (a 413's `Connection: close`) go along."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/"):
        message = "the body is not valid JSON" if exc.status_code == 400 else str(exc.detail)
        return api_error(exc.status_code, message, headers=dict(exc.headers or {}))
    if "text/html" not in request.headers.get("accept", ""):
        return await http_exception_handler(request, exc)
    heading = "Page not found" if exc.status_code == 404 else "Something is wrong"
    return site_of(request).pages.render(
        request,
        "error.html",
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
        heading=heading,
        message="There is nothing at this address." if exc.status_code == 404 else str(exc.detail),
        back="/subscribe",
    )
