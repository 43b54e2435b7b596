"""The checks a request passes before its handler runs, declared as FastAPI dependencies so
that no handler can forget one: the CSRF pair of every human-facing form, and the per-IP limit
of every endpoint that can send a confirmation email (forms and the JSON API), counted in the
database so that it holds across every `digest serve` process.

A dependency cannot return a response, so a refusal raises `Refused` carrying the exact answer
(the form's page, or the API's JSON body) and the app's handler for it (`answer_refused`,
registered in app.py) sends that answer unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.web.site import Site, client_ip, site_of
from subscribers.ratelimit import client_key

# How a face answers a client over its limit: the site, the request, the seconds to wait.
LimitAnswer = Callable[[Site, Request, float], Response]


class Refused(Exception):
    """A guard said no; `response` is the answer the client gets instead of the handler's."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def answer_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


def forbidden(site: Site, request: Request) -> HTMLResponse:
    """A form without a valid CSRF pair: usually a page left open too long."""
    return site.pages.render(
        request,
        "error.html",
        status_code=403,
        heading="Please try again",
        message="This form expired or was sent from another site. Reload the page and send it "
        "again.",
        back=request.url.path,
    )


def too_many(site: Site, request: Request, wait: float) -> HTMLResponse:
    """The forms' answer over the per-IP limit: a page saying how long to wait."""
    minutes = max(1, round(wait / 60))
    return site.pages.render(
        request,
        "error.html",
        status_code=429,
        headers={"Retry-After": retry_after(wait)},
        heading="Too many requests",
        message=f"Too many requests from your network. Please try again in about {minutes} "
        "minute(s).",
        back=None,
    )


def retry_after(wait: float) -> str:
    """The Retry-After value: whole seconds, never 0 (0 would invite an immediate retry)."""
    return str(max(1, int(wait)))


async def csrf_form(request: Request, csrf_token: str = Form("")) -> None:
    """Every form POST: the signed double-submit pair must match (digest/web/security.py)."""
    site = site_of(request)
    if not site.csrf.valid(request, csrf_token):
        raise Refused(forbidden(site, request))


def rate_limit(answer: LimitAnswer) -> Callable[[Request], Awaitable[None]]:
    """A dependency taking one request from the client's per-IP allowance (an IPv6 client's
    /64: subscribers.ratelimit.client_key); over it, the client gets `answer` (each face
    answers in its own format)."""

    async def limit(request: Request) -> None:
        site = site_of(request)
        key, now = client_key(client_ip(request)), site.clock()
        # The count is a database write shared by every process (digest.store.ratelimit):
        # on SQLite it is quicker inline; a server database's round trip goes to a thread.
        if site.inline_writes:
            wait = site.limiter.hit(key, now)
        else:
            wait = await run_in_threadpool(site.limiter.hit, key, now)
        if wait:
            raise Refused(answer(site, request, wait))

    return limit


limit_form = rate_limit(too_many)

# What a route declares (`dependencies=...`): a form POST, and one that can send an email.
FORM = (Depends(csrf_form),)
LIMITED_FORM = (Depends(csrf_form), Depends(limit_form))
