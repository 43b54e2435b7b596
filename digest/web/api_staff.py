"""The staff API's other reads: who am I, subscribers by search, the numbers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from digest.staff import roles, views
from digest.staff.roles import Principal
from digest.web import api_models as m
from digest.web.apierrors import RESPONSES
from digest.web.site import site_of
from digest.web.staffauth import Staff, role, staff

router = APIRouter(prefix="/api", tags=["staff"], dependencies=[Depends(staff)])
Reader = Annotated[Principal, Depends(role(roles.READ))]


@router.get("/me", response_model=m.Me, responses=RESPONSES)
def me(who: Staff) -> dict[str, Any]:
    """The staff member this token or session belongs to, and what their role allows."""
    return {
        "email": who.email,
        "role": who.role,
        "via": who.via,
        "may": [a for a in roles.ACTIONS if roles.allowed(who.role, a)],
    }


@router.get("/subscribers", response_model=m.SubscriberPage, responses=RESPONSES)
def subscribers(
    request: Request,
    who: Reader,
    search: Annotated[
        str, Query(max_length=320, description="Part of an address or a name (any case).")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=views.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=m.MAX_ID)] = 0,
    status: Annotated[
        Literal[views.LISTED_STATUSES] | None,  # type: ignore[valid-type]
        Query(description="Only subscribers in this state."),
    ] = None,
) -> dict[str, Any]:
    """Subscribers whose address or name contains `search` (and in `status`, if given), by
    address, a page at a time."""
    site = site_of(request)
    with site.sessions() as session:
        return views.subscribers(session, search, limit, offset, status)


@router.get("/stats", response_model=m.Stats, responses=RESPONSES)
def stats(request: Request, who: Reader) -> dict[str, Any]:
    """Subscribers by status and section, editions by status, the latest send's outcome."""
    site = site_of(request)
    with site.sessions() as session:
        return views.stats(session, site.settings, site.clock())
