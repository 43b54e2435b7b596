"""GET `{base_url}/u/{token}`: the link in every List-Unsubscribe header and every footer.

A GET never changes anything (mail scanners fetch links, RFC 8058 §1): it shows a page whose
button POSTs to the same address, which is the one-click endpoint (digest/web/oneclick.py).
An erased or unknown subscriber's link shows the same "unsubscribed" page as someone who left.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from digest.web.manage import invalid, mask
from digest.web.oneclick import done_page
from digest.web.site import site_of
from subscribers.models import ACTIVE, PENDING
from subscribers.policy import find_by_public_id
from subscribers.tokens import MANAGE, UNSUBSCRIBE, TokenError, make_token, read_token

router = APIRouter()


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
            # Erased, unknown or gone: all look the same, and like the POST's answer.
            return HTMLResponse(
                done_page(site.settings.publication.name, site.settings.newsletter.title)
            )
        manage = site.url(f"/manage/{make_token(site.keys, MANAGE, public_id, site.clock())}")
        return site.pages.render(
            request,
            "unsubscribe.html",
            token=token,
            masked_email=mask(sub.email),
            manage_url=manage,
        )
