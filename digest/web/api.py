"""The JSON subscribe API, for a publication's own site or app.

POST /api/subscribe {"email", "name"?, "sections"?, "consent_text_version"?} -> 202
POST /api/resend    {"email"}                                              -> 202
GET  /api/consent   -> the consent text and version to show, and the sections

Answers are the same whether or not the address is known (no enumeration). No CSRF token: the
API takes only `application/json`, which a cross-site page cannot send without a CORS preflight
that this app never grants, and it acts on no cookie.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from digest.web.site import Site, client_ip, evidence, site_of
from subscribers.errors import InvalidEmail, InvalidSections
from subscribers.optin import Notice, resend_confirmation, subscribe

router = APIRouter(prefix="/api")

SOURCE = "JSON API"
ACCEPTED = {
    "status": "accepted",
    "message": "If this address can be subscribed, an email with a confirmation link is on "
    "its way to it.",
}


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    name: str | None = Field(None, max_length=200)
    sections: list[str] | None = Field(None, max_length=100)
    consent_text_version: str | None = Field(None, max_length=64)


class ResendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)


def error(status: int, field: str | None, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "error": {"field": field, "message": message}},
        status_code=status,
        headers=headers or None,
    )


async def _read(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return error(415, None, "send the request as application/json")
    try:
        data = json.loads(await request.body())
        return model.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, None, f"the body is not JSON: {exc}")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        return error(422, field, first["msg"])


def _limited(site: Site, request: Request) -> JSONResponse | None:
    wait = site.limiter.hit(client_ip(request), site.clock())
    if not wait:
        return None
    seconds = str(max(1, int(wait)))
    return error(429, None, "too many requests from this address", **{"Retry-After": seconds})


@router.get("/consent")
def consent(request: Request) -> dict[str, Any]:
    site = site_of(request)
    sub = site.settings.subscribers
    return {
        "version": sub.consent_text_version,
        "text": sub.consent_text,
        "sections": list(site.rules.sections),
    }


@router.post("/subscribe", status_code=202, response_model=None)
async def api_subscribe(request: Request, background: BackgroundTasks) -> JSONResponse:
    site = site_of(request)
    body = await _read(request, SubscribeRequest)
    if isinstance(body, JSONResponse):
        return body
    assert isinstance(body, SubscribeRequest)
    limited = _limited(site, request)
    if limited is not None:
        return limited
    version = site.settings.subscribers.consent_text_version
    if body.consent_text_version not in (None, version):
        return error(
            409,
            "consent_text_version",
            f"version {body.consent_text_version!r} is not the current consent text "
            f"({version!r}); show GET /api/consent and send its version",
        )
    proof = evidence(request, SOURCE, consent_version=version)

    def work() -> Notice | None:
        with site.write() as session:
            return subscribe(
                session,
                body.email,
                evidence=proof,
                now=site.clock(),
                keys=site.keys,
                policy=site.rules,
                name=body.name,
                sections=body.sections,
            )

    try:
        notice = await run_in_threadpool(work)
    except InvalidEmail as exc:
        return error(422, "email", str(exc))
    except InvalidSections as exc:
        return error(422, "sections", str(exc))
    except IntegrityError:
        notice = None  # the same address twice at once: the other request sends the email
    if notice is not None:
        site.schedule(background, notice)
    return JSONResponse(ACCEPTED, status_code=202)


@router.post("/resend", status_code=202, response_model=None)
async def api_resend(request: Request, background: BackgroundTasks) -> JSONResponse:
    site = site_of(request)
    body = await _read(request, ResendRequest)
    if isinstance(body, JSONResponse):
        return body
    assert isinstance(body, ResendRequest)
    limited = _limited(site, request)
    if limited is not None:
        return limited

    def work() -> Notice | None:
        with site.write() as session:
            return resend_confirmation(
                session, body.email, now=site.clock(), keys=site.keys, policy=site.rules
            )

    try:
        notice = await run_in_threadpool(work)
    except InvalidEmail as exc:
        return error(422, "email", str(exc))
    if notice is not None:
        site.schedule(background, notice)
    return JSONResponse(ACCEPTED, status_code=202)
