"""The subscribe form, the confirmation page and "send me a new link".

Whatever the address (new, pending, already subscribed, rate limited, caught by the honeypot),
a well-formed request gets the same redirect to the same "check your inbox" page: the form must
not tell anyone who subscribes (docs/standards.md §5). Only the person's own mistakes (a malformed
address, no section ticked) are answered differently, and those say nothing about anyone.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from digest.edition import archive
from digest.people.notify import Welcome
from digest.web.guards import FORM, LIMITED_FORM
from digest.web.site import Site, evidence, site_of
from subscribers.consent import check_consent_version
from subscribers.errors import InvalidEmail, InvalidName, InvalidSections, StaleConsentText
from subscribers.models import Subscriber
from subscribers.optin import (
    ALREADY_CONFIRMED,
    CONFIRMED,
    EXPIRED,
    READY,
    ConfirmResult,
    check_confirmation,
    confirm,
    resend_confirmation,
    subscribe,
)
from subscribers.policy import check_sections
from subscribers.tokens import MANAGE, make_token

router = APIRouter()

CHECK_INBOX = "/subscribe/check-inbox"
FORM_SOURCE = "subscribe form"
CONFIRM_SOURCE = "confirmation link"


def check_inbox(site: Site) -> RedirectResponse:
    return site.redirect(CHECK_INBOX)


def _form(site: Site, request: Request, status: int = 200, **values: object) -> HTMLResponse:
    sub = site.settings.subscribers
    context: dict[str, Any] = {
        "email": "",
        "name": "",
        "error": None,
        "chosen": list(site.rules.sections),
        "sections": list(site.rules.sections),
        "consent_text": sub.consent_text,
        "consent_text_version": sub.consent_text_version,
    }
    context.update(values)
    return site.pages.render(request, "subscribe.html", status_code=status, **context)


@router.get("/", include_in_schema=False)
@router.get("/subscribe")
def subscribe_page(request: Request) -> HTMLResponse:
    return _form(site_of(request), request)


@router.post("/subscribe", response_model=None, dependencies=LIMITED_FORM)
def subscribe_form(
    request: Request,
    background: BackgroundTasks,
    email: str = Form(""),
    name: str = Form(""),
    sections: list[str] = Form([]),
    website: str = Form(""),
    consent_text_version: str = Form(""),
) -> Response:
    site = site_of(request)
    if website:
        return check_inbox(site)  # the honeypot: a bot filled the hidden field; it learns nothing
    version = site.settings.subscribers.consent_text_version
    values = {"email": email, "name": name, "chosen": sections}
    try:
        check_consent_version(consent_text_version, version)  # no field: "", never current
    except StaleConsentText:
        message = "The terms below changed while the page was open: please read them again."
        return _form(site, request, 409, error=message, **values)
    try:
        chosen = check_sections(sections, site.rules.sections, allow_all=False)
        with site.write() as session:
            notice = subscribe(
                session,
                email,
                evidence=evidence(request, FORM_SOURCE, consent_version=version),
                now=site.clock(),
                keys=site.keys,
                policy=site.rules,
                name=name,
                sections=chosen,
            )
    except (InvalidEmail, InvalidName, InvalidSections) as exc:
        return _form(site, request, 400, error=_sentence(exc), **values)
    except IntegrityError:
        return check_inbox(site)  # the same address submitted twice at once: one of them won
    if notice is not None:
        site.schedule(background, notice)
    return check_inbox(site)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@router.get(CHECK_INBOX)
def check_inbox_page(request: Request) -> HTMLResponse:
    site = site_of(request)
    return site.pages.render(request, "check_inbox.html")


@router.post("/resend", response_model=None, dependencies=LIMITED_FORM)
def resend_form(request: Request, background: BackgroundTasks, email: str = Form("")) -> Response:
    site = site_of(request)
    try:
        with site.write() as session:
            notice = resend_confirmation(
                session, email, now=site.clock(), keys=site.keys, policy=site.rules
            )
    except InvalidEmail as exc:
        return site.pages.render(
            request,
            "error.html",
            400,
            heading="Check the address",
            message=_sentence(exc),
            back=CHECK_INBOX,
        )
    if notice is not None:
        site.schedule(background, notice)
    return check_inbox(site)


def _confirm_page(
    site: Site, request: Request, token: str, result: ConfirmResult, status: int
) -> Response:
    """The page of a confirmation link. A link that was already used says so and offers a
    link by email, never a preferences link: an old confirmation email (forwarded, in a
    shared inbox, in a log) must not hand out the right to change or end a subscription."""
    sub = result.subscriber if result.state == READY else None
    context: dict[str, Any] = {
        "state": result.state,
        "token": token,
        "ttl_hours": site.settings.subscribers.confirm_ttl_hours,
        # What confirming gives: the request's own name and sections.
        "name": sub.requested_name if sub is not None else None,
        "sections": _sections(site, sub.requested_sections) if sub is not None else None,
    }
    return site.pages.render(request, "confirm.html", status_code=status, **context)


def _sections(site: Site, chosen: list[str] | None) -> list[str]:
    return list(site.rules.sections) if chosen is None else list(chosen)


STATUS = {READY: 200, ALREADY_CONFIRMED: 200, EXPIRED: 410}


@router.get("/confirm/{token}")
def confirm_page(request: Request, token: str) -> Response:
    """Shows a button that POSTs: link scanners follow GET links, people press buttons."""
    site = site_of(request)
    with site.sessions() as session:
        result = check_confirmation(
            session, token, now=site.clock(), keys=site.keys, policy=site.rules
        )
        return _confirm_page(site, request, token, result, STATUS.get(result.state, 404))


@router.post("/confirm/{token}", dependencies=FORM)
def confirm_submit(request: Request, token: str, background: BackgroundTasks) -> Response:
    site = site_of(request)
    version = site.settings.subscribers.consent_text_version
    with site.write() as session:
        result = confirm(
            session,
            token,
            evidence=evidence(request, CONFIRM_SOURCE, consent_version=version),
            now=site.clock(),
            keys=site.keys,
            policy=site.rules,
        )
        sub = result.subscriber
        if result.state == CONFIRMED and sub is not None:
            if site.settings.subscribers.welcome_email:
                latest = archive.latest_url(session, site.settings)
                site.schedule_welcome(background, _welcome(sub, latest))
            url = site.url(f"/manage/{make_token(site.keys, MANAGE, sub.public_id, site.clock())}")
            return site.pages.render(
                request, "confirmed.html", manage_url=url, sections=sub.sections
            )
        return _confirm_page(site, request, token, result, STATUS.get(result.state, 404))


def _welcome(sub: Subscriber, latest_url: str | None) -> Welcome:
    return Welcome(sub.id, sub.email, sub.public_id, sub.name, sub.sections, latest_url)
