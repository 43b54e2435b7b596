"""The staff API's editions: read them, edit a draft, change its status, send a test, send it
and follow the send, check it before it goes.

Each route parses, checks the role, calls ONE core function with the staff member's email as
the actor (so the edition's history names them), and returns what the core returns; the core's
refusals become JSON errors in digest/web/apierrors.py. Routes are plain functions: FastAPI runs
them in its threadpool, away from the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from digest.backends import get_backend
from digest.edition import edits, lifecycle
from digest.edition.preflight import preflight_edition
from digest.send import status, testmail
from digest.staff import roles, views
from digest.staff.roles import Principal
from digest.web import api_models as m
from digest.web.apierrors import CONFLICT, NOT_FOUND, RESPONSES, about
from digest.web.site import Site, site_of
from digest.web.staffauth import role, staff

router = APIRouter(prefix="/api", tags=["editions"], dependencies=[Depends(staff)])

Id = Annotated[int, Path(ge=1, le=m.MAX_ID, description="The edition's id.")]
Reader = Annotated[Principal, Depends(role(roles.READ))]
Editor = Annotated[Principal, Depends(role(roles.EDIT))]
Tester = Annotated[Principal, Depends(role(roles.TEST))]
Publisher = Annotated[Principal, Depends(role(roles.SEND))]
ERRORS = {**RESPONSES, **NOT_FOUND}
CHANGES = {**ERRORS, **CONFLICT}


def _detail(site: Site, edition_id: int) -> dict[str, Any]:
    with site.sessions() as session:
        return views.edition(session, site.settings, edition_id, site.clock())


def _edited(site: Site, result: edits.EditResult) -> dict[str, Any]:
    return {
        "edition": _detail(site, result.edition_id),
        "warnings": result.warnings,
        "position": result.position,
    }


def _may_edit(site: Site, who: Principal, edition_id: int) -> None:
    """404 for an unknown edition (so a missing article is the body's 422, not a 404), and
    editors edit drafts only."""
    with site.sessions() as session:
        roles.check_edit_of(session, who, edition_id)


@router.get("/editions", response_model=list[m.EditionSummary], responses=RESPONSES)
def list_editions(request: Request, who: Reader) -> list[dict[str, Any]]:
    """Every edition, newest week first."""
    site = site_of(request)
    with site.sessions() as session:
        return views.editions(session, site.settings, site.clock())


@router.get("/editions/{edition_id}", response_model=m.EditionDetail, responses=ERRORS)
def show(edition_id: Id, request: Request, who: Reader) -> dict[str, Any]:
    """Items with their reasons, variants and recipients, status, week, history, send."""
    return _detail(site_of(request), edition_id)


@router.get("/editions/{edition_id}/candidates", response_model=m.Candidates, responses=ERRORS)
def candidates(edition_id: Id, request: Request, who: Reader) -> dict[str, Any]:
    """Every candidate of the edition's week, chosen or not, best first, with its reasons."""
    site = site_of(request)
    with site.sessions() as session:
        return views.candidates(session, site.settings, edition_id)


def _item_route(
    name: str, body_model: type[m.ArticleBody], doc: str, call: Callable[..., edits.EditResult]
) -> None:
    def route(edition_id: Id, body: Any, request: Request, who: Editor) -> dict[str, Any]:
        site = site_of(request)
        _may_edit(site, who, edition_id)
        with about("article"):
            result = call(site, edition_id, body, who.email)
        return _edited(site, result)

    route.__annotations__["body"] = body_model
    route.__name__ = name
    route.__doc__ = doc
    router.post(f"/editions/{{edition_id}}/{name}", response_model=m.Edited, responses=CHANGES)(
        route
    )


def _pin(site: Site, e: int, body: m.ArticleBody, actor: str, lead: bool) -> edits.EditResult:
    ref = str(body.article)
    return edits.pin(site.sessions, site.settings, e, ref, actor, site.clock(), lead=lead)


_item_route(
    "pin",
    m.ArticleBody,
    "Keep an article in, whatever the ranking says.",
    lambda site, e, body, actor: _pin(site, e, body, actor, lead=False),
)
_item_route(
    "lead",
    m.ArticleBody,
    "Pin an article and make it the lead story.",
    lambda site, e, body, actor: _pin(site, e, body, actor, lead=True),
)
_item_route(
    "drop",
    m.ArticleBody,
    "Keep an article out; the next best takes its place.",
    lambda site, e, body, actor: edits.drop(
        site.sessions, site.settings, e, str(body.article), actor, site.clock()
    ),
)
_item_route(
    "move",
    m.MoveBody,
    "Move an article to a position in the reading order, or into another section.",
    lambda site, e, body, actor: edits.move(
        site.sessions,
        site.settings,
        e,
        str(body.article),
        actor,
        site.clock(),
        position=body.position,
        section=body.section,
    ),
)


def _text_route(kind: str, body_model: type[m.Body]) -> None:
    def route(edition_id: Id, body: Any, request: Request, who: Editor) -> dict[str, Any]:
        site = site_of(request)
        _may_edit(site, who, edition_id)
        with about("text"):
            result = edits.set_text(
                site.sessions, site.settings, edition_id, kind, body.text, who.email, site.clock()
            )
        return _edited(site, result)

    route.__annotations__["body"] = body_model
    route.__name__ = kind
    route.__doc__ = f'Set the {kind} ("" restores the default).'
    router.post(f"/editions/{{edition_id}}/{kind}", response_model=m.Edited, responses=CHANGES)(
        route
    )


_text_route("subject", m.SubjectBody)
_text_route("preheader", m.PreheaderBody)
_text_route("intro", m.IntroBody)


def _status_route(action: str, body_model: type[m.Body], doc: str, optional: bool = True) -> None:
    def route(edition_id: Id, request: Request, who: Principal, body: Any = None) -> dict[str, Any]:
        site = site_of(request)
        body = body if body is not None else body_model()
        force = lifecycle.Override(body.reason) if getattr(body, "force", False) else None
        with about("reason"):
            result = edits.change_status(
                site.sessions,
                site.settings,
                edition_id,
                action,
                who.email,
                site.clock(),
                reason=getattr(body, "reason", None),
                force=force,
            )
        return _edited(site, result)

    route.__annotations__["body"] = body_model | None if optional else body_model
    if not optional:
        route.__defaults__ = ()  # the body is required: no default
    route.__annotations__["who"] = Annotated[Principal, Depends(role(action))]
    route.__name__ = action
    route.__doc__ = doc
    router.post(f"/editions/{{edition_id}}/{action}", response_model=m.Edited, responses=CHANGES)(
        route
    )


_status_route(
    "approve", m.ForceBody, "Freeze the content for sending (publishers); force a thin week."
)
_status_route("unapprove", m.ReasonBody, "Back to draft (publishers).")
_status_route("cancel", m.ReasonBody, "Call the edition off (publishers).")
_status_route(
    "skip", m.SkipBody, "Send nothing this week (publishers); a reason is required.", False
)


@router.post(
    "/editions/{edition_id}/test",
    response_model=m.TestSent,
    responses={**CHANGES, 502: RESPONSES[401] | {"description": "The mail provider failed."}},
)
def send_test(edition_id: Id, body: m.TestBody, request: Request, who: Tester) -> dict[str, Any]:
    """Send the whole edition to a few addresses, outside the ledger (subject marked as a test).
    Any edition, a draft included; the history records it."""
    site = site_of(request)
    with about("to"):
        to = testmail.addresses(body.to)
    backend = site.backend if site.backend is not None else get_backend(site.settings)
    sent = testmail.send_test_to(
        site.sessions, site.settings, backend, edition_id, to, site.clock(), who.email
    )
    return {
        "edition_id": sent.edition_id,
        "subject": sent.subject,
        "results": [
            {"email": r.email, "status": r.status, "reason": r.reason} for r in sent.results
        ],
    }


@router.post(
    "/editions/{edition_id}/send", status_code=202, response_model=m.SendProgress, responses=CHANGES
)
def start_send(
    edition_id: Id, request: Request, who: Publisher, body: m.ForceBody | None = None
) -> dict[str, Any]:
    """Start sending an approved edition (publishers) inside its send window (or `force` it
    with a reason). Answers at once; a worker of this server delivers it (GET follows it)."""
    site = site_of(request)
    body = body or m.ForceBody()
    force = lifecycle.Override(body.reason or "") if body.force else None
    site.sends.start(edition_id, who.email, force)
    return _progress(site, edition_id)


def _progress(site: Site, edition_id: int) -> dict[str, Any]:
    with site.sessions() as session:
        return views.progress(session, site.settings, edition_id, site.clock())


@router.get("/editions/{edition_id}/send", response_model=m.SendProgress, responses=ERRORS)
def send_progress(edition_id: Id, request: Request, who: Reader) -> dict[str, Any]:
    """Counts per ledger state, rate, ETA, workers, uncertain rows, opens and clicks (404
    until the send begins)."""
    return _progress(site_of(request), edition_id)


@router.post("/editions/{edition_id}/send/cancel", response_model=m.SendProgress, responses=CHANGES)
def cancel_send(edition_id: Id, request: Request, who: Publisher) -> dict[str, Any]:
    """Stop claiming batches (publishers); resume continues it later."""
    site = site_of(request)
    with site.write() as session:
        status.cancel(session, edition_id, site.clock(), actor=who.email)
    return _progress(site, edition_id)


@router.post(
    "/editions/{edition_id}/send/resume",
    status_code=202,
    response_model=m.SendProgress,
    responses=CHANGES,
)
def resume_send(
    edition_id: Id, request: Request, who: Publisher, body: m.ResumeBody | None = None
) -> dict[str, Any]:
    """Continue a cancelled or interrupted send (publishers)."""
    site = site_of(request)
    body = body or m.ResumeBody()
    site.sends.resume(edition_id, who.email, resend_uncertain=body.resend_uncertain)
    return _progress(site, edition_id)


@router.get("/editions/{edition_id}/preflight", response_model=m.Preflight, responses=ERRORS)
def preflight(
    edition_id: Id,
    request: Request,
    who: Reader,
    variant: Annotated[
        str | None,
        Query(max_length=1000, description="One variant: its sections, comma-separated."),
    ] = None,
) -> dict[str, Any]:
    """The checks approving and sending run: the full edition and every variant with
    subscribers (or only `variant`), each check with its status, message and fix."""
    site = site_of(request)
    with about("variant"):
        report = preflight_edition(
            site.sessions, site.settings, edition_id, site.clock(), variant or None
        )
    return report.as_json()
