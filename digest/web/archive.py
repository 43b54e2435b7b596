"""The public archive: `/archive/` lists every edition whose send has begun, newest first;
`/archive/<date>` is one of them as sent (all sections, nobody's links); `/archive/feed.xml` is
their RSS 2.0 feed. Public pages: no sign-in, cacheable for five minutes; an edition's page has
its own CSP (the email's inline styles and https images, still no script; digest/web/security.py).
With `[web] archive = false` every one of them is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from digest.edition import archive
from digest.render.email import date_label
from digest.web.site import site_of

router = APIRouter(prefix=archive.PREFIX)


def _enabled(request: Request) -> None:
    if not archive.enabled(site_of(request).settings):
        raise HTTPException(404, "there is no archive here")


@router.get("/", include_in_schema=False)
def index(request: Request) -> HTMLResponse:
    _enabled(request)
    site = site_of(request)
    tz = site.settings.publication.tz
    with site.sessions() as session:
        entries = archive.entries(session, site.settings)
    rows = [
        {
            "url": f"{archive.PREFIX}/{e.slug}",
            "subject": e.subject,
            "date": date_label(e.cutoff.astimezone(tz)),
            "count": len(e.headlines),
            "lead": e.headlines[0] if e.headlines else "",
        }
        for e in entries
    ]
    return site.pages.public("archive.html", entries=rows, feed_url=f"{archive.PREFIX}/feed.xml")


@router.get("/feed.xml", include_in_schema=False)
def feed(request: Request) -> Response:
    _enabled(request)
    site = site_of(request)
    with site.sessions() as session:
        body = archive.feed(session, site.settings, site.clock())
    return Response(body, media_type="application/rss+xml; charset=utf-8")


@router.get("/{slug}", include_in_schema=False)
def edition(request: Request, slug: str) -> HTMLResponse:
    _enabled(request)
    site = site_of(request)
    with site.sessions() as session:
        found = archive.find(session, site.settings, slug)
        if found is None:
            raise HTTPException(404, "no edition at this address")
        html = archive.web_copy(site.settings, found)
    return HTMLResponse(html)
