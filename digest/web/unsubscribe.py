"""`{base_url}/u/{token}`: the link in every List-Unsubscribe header and every footer.

GET never changes anything (mail scanners fetch links): it shows a page whose button POSTs.
POST is RFC 8058 one-click (standards.md §1): mailbox providers send
`List-Unsubscribe=One-Click` as application/x-www-form-urlencoded or multipart/form-data, with
no cookie, login or CSRF token, and must get a 2xx without a redirect. So the POST reads
nothing but the token in the URL (the body is not even parsed), is idempotent, and answers the
same 200 page for every genuine token, whether its subscriber exists, was erased, or left long
ago: nothing is given away. Only a token that fails its signature gets a 400.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.web.manage import invalid, mask
from digest.web.pages import environment, stylesheet
from digest.web.site import Site, evidence, site_of
from subscribers.consent import Evidence
from subscribers.lifecycle import unsubscribe
from subscribers.models import ACTIVE, PENDING
from subscribers.policy import find_by_public_id
from subscribers.tokens import MANAGE, UNSUBSCRIBE, TokenError, make_token, read_token

router = APIRouter()

ONE_CLICK_SOURCE = "one-click unsubscribe (List-Unsubscribe-Post)"
PAGE_SOURCE = "unsubscribe page"
# The page's form marks itself, so the evidence can tell a person from a mailbox provider.
PAGE_MARK = b"via=page"


def done_page(site: Site) -> str:
    """The one answer to every genuine POST: the same bytes whoever the token belonged to."""
    return _done_html(site.settings.publication.name, site.settings.newsletter.title)


@cache
def _done_html(publication: str, title: str) -> str:
    """Rendered once: no cookie, no CSRF token, no per-request work."""
    template = environment().get_template("unsubscribed.html")
    return template.render(publication=publication, title=title, css=stylesheet())


@router.get("/u/{token}")
def unsubscribe_page(request: Request, token: str) -> Response:
    site = site_of(request)
    try:
        public_id = read_token(site.keys, UNSUBSCRIBE, token, site.clock())
    except TokenError:
        return invalid(site, request)
    with site.sessions() as session:
        sub = find_by_public_id(session, public_id)
        if sub is None or sub.status not in (ACTIVE, PENDING):
            return HTMLResponse(done_page(site))  # erased, unknown or gone: all look the same
        manage = site.url(f"/manage/{make_token(site.keys, MANAGE, public_id, site.clock())}")
        return site.pages.render(
            request,
            "unsubscribe.html",
            token=token,
            masked_email=mask(sub.email),
            manage_url=manage,
        )


@router.post("/u/{token}")
async def one_click(request: Request, token: str) -> Response:
    site = site_of(request)
    try:
        public_id = read_token(site.keys, UNSUBSCRIBE, token, site.clock())
    except TokenError:
        return PlainTextResponse("This unsubscribe link is not valid.", status_code=400)
    body = await request.body()
    source = PAGE_SOURCE if PAGE_MARK in body else ONE_CLICK_SOURCE
    await run_in_threadpool(_unsubscribe, site, public_id, evidence(request, source))
    return HTMLResponse(done_page(site))


def _unsubscribe(site: Site, public_id: str, proof: Evidence) -> None:
    with site.write() as session:
        sub = find_by_public_id(session, public_id)
        if sub is None:
            return
        unsubscribe(
            session, sub, evidence=proof, now=site.clock(), keys=site.keys, policy=site.rules
        )
