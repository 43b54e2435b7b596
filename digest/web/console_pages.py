"""The console's dashboard (`/staff`) and history (`/staff/history`): read-only pages over
digest.staff.dashboard and digest.staff.history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from digest.staff import dashboard, history
from digest.web import console
from digest.web.site import site_of
from digest.web.staff import SignedIn

router = console.pages()


@router.get("")
def home(request: Request, who: SignedIn) -> HTMLResponse:
    """The next slot and what will happen then, the current edition, the last one's numbers."""
    site = site_of(request)
    now = site.clock()
    board = dashboard.overview(site.sessions, site.settings, now)
    return console.render(
        request,
        who,
        "dashboard.html",
        section="dashboard",
        board=board,
    )


@router.get("/history")
def past(
    request: Request,
    who: SignedIn,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """Past editions with their numbers, newest first, and the most-clicked articles."""
    site = site_of(request)
    with site.sessions() as session:
        found = history.past(session, site.settings, offset=offset)
    return console.render(
        request,
        who,
        "history.html",
        section="history",
        history=found,
    )
