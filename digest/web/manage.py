"""The preference center behind `{base_url}/manage/{token}`: sections, a pause of N weeks,
unsubscribe from everything, and (for someone who left) subscribing again with a new double
opt-in. The link in every email is the only credential; forms carry CSRF tokens.

The page shows the address masked: a forwarded newsletter carries this link, and whoever it was
forwarded to should not learn the address from it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from digest.web.guards import FORM, LIMITED_FORM
from digest.web.public import check_inbox
from digest.web.site import Site, evidence, site_of
from subscribers.errors import InvalidPause, InvalidSections
from subscribers.lifecycle import pause, resume, set_sections, unsubscribe
from subscribers.models import ACTIVE, PENDING, Subscriber
from subscribers.optin import resubscribe
from subscribers.policy import find_by_public_id
from subscribers.tokens import MANAGE, TokenError, read_token

router = APIRouter()

SOURCE = "preference center"
MESSAGES = {
    "saved": "Your sections are saved.",
    "paused": "Paused. Nothing will arrive until the date below.",
    "resumed": "Welcome back: the next edition will reach you.",
}


def mask(email: str) -> str:
    """j•••@example.org: enough for the owner to recognise, too little for anyone else."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def find(site: Site, session: Session, token: str) -> Subscriber | None:
    try:
        public_id = read_token(site.keys, MANAGE, token, site.clock())
    except TokenError:
        return None
    return find_by_public_id(session, public_id)


def invalid(site: Site, request: Request) -> HTMLResponse:
    return site.pages.render(request, "invalid_link.html", status_code=404)


def _date(value: datetime | None, tz: tzinfo) -> str | None:
    """November 27, 2026: the day in the publication's timezone (a pause ends at a moment in
    UTC, which is the day before or after in some timezones)."""
    if value is None:
        return None
    local = value.astimezone(tz)
    return f"{local:%B} {local.day}, {local.year}"


def page(
    site: Site,
    request: Request,
    token: str,
    sub: Subscriber,
    *,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
    chosen: list[str] | None = None,
) -> HTMLResponse:
    paused = sub.paused_until if sub.paused_until and sub.paused_until > site.clock() else None
    sections = list(site.rules.sections)
    return site.pages.render(
        request,
        "manage.html",
        status_code=status,
        token=token,
        masked_email=mask(sub.email),
        active=sub.status == ACTIVE,
        pending=sub.status == PENDING,
        sections=sections,
        chosen=chosen if chosen is not None else (sub.sections or sections),
        paused_until=_date(paused, site.settings.publication.tz),
        pause_choices=[w for w in (1, 2, 4, 8, 12, 26, 52) if w <= site.rules.max_pause_weeks],
        message=message,
        error=error,
    )


@router.get("/manage/{token}")
def manage_page(request: Request, token: str, m: str = "") -> Response:
    site = site_of(request)
    with site.sessions() as session:
        sub = find(site, session, token)
        if sub is None:
            return invalid(site, request)
        return page(site, request, token, sub, message=MESSAGES.get(m))


Change = Callable[[Site, Request, Subscriber, Session], str | None]


def _change(request: Request, token: str, change: Change) -> Response:
    """Find the subscriber, apply `change`, then back to the page (POST-redirect-GET).
    `change` returns the message key, or raises for the person's own mistake."""
    site = site_of(request)
    with site.write() as session:
        sub = find(site, session, token)
        if sub is None:
            return invalid(site, request)
        try:
            key = change(site, request, sub, session)
        except (InvalidSections, InvalidPause) as exc:
            # Raised before anything changed, so committing this transaction writes nothing.
            return page(site, request, token, sub, status=400, error=str(exc).capitalize())
    return site.redirect(f"/manage/{token}?m={key or ''}")


@router.post("/manage/{token}", dependencies=FORM)
def save_sections(request: Request, token: str, sections: list[str] = Form([])) -> Response:
    def change(site: Site, request: Request, sub: Subscriber, session: Session) -> str:
        set_sections(
            sub, sections, evidence=evidence(request, SOURCE), now=site.clock(), policy=site.rules
        )
        return "saved"

    return _change(request, token, change)


@router.post("/manage/{token}/pause", dependencies=FORM)
def pause_mail(request: Request, token: str, weeks: str = Form("")) -> Response:
    def change(site: Site, request: Request, sub: Subscriber, session: Session) -> str:
        try:
            count = int(weeks)
        except ValueError:
            raise InvalidPause(f"choose how many weeks to pause, not {weeks!r}") from None
        pause(sub, count, evidence=evidence(request, SOURCE), now=site.clock(), policy=site.rules)
        return "paused"

    return _change(request, token, change)


@router.post("/manage/{token}/resume", dependencies=FORM)
def resume_mail(request: Request, token: str) -> Response:
    def change(site: Site, request: Request, sub: Subscriber, session: Session) -> str:
        resume(sub, evidence=evidence(request, SOURCE), now=site.clock())
        return "resumed"

    return _change(request, token, change)


@router.post("/manage/{token}/unsubscribe", dependencies=FORM)
def unsubscribe_all(request: Request, token: str) -> Response:
    site = site_of(request)
    with site.write() as session:
        sub = find(site, session, token)
        if sub is None:
            return invalid(site, request)
        unsubscribe(
            session,
            sub,
            evidence=evidence(request, SOURCE),
            now=site.clock(),
            keys=site.keys,
            policy=site.rules,
        )
    return site.pages.render(request, "unsubscribed.html")


@router.post("/manage/{token}/resubscribe", dependencies=LIMITED_FORM)
def resubscribe_request(request: Request, token: str, background: BackgroundTasks) -> Response:
    """Coming back needs a new double opt-in: a confirmation email, as from the form."""
    site = site_of(request)
    version = site.settings.subscribers.consent_text_version
    with site.write() as session:
        sub = find(site, session, token)
        if sub is None:
            return invalid(site, request)
        notice = resubscribe(
            session,
            sub,
            evidence=evidence(request, SOURCE, consent_version=version),
            now=site.clock(),
            keys=site.keys,
            policy=site.rules,
        )
    if notice is not None:
        site.schedule(background, notice)
    return check_inbox(site)
