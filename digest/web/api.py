"""The JSON subscribe API, for a publication's own site or app.

POST /api/subscribe {"email", "name"?, "sections"?, "consent_text_version"?} -> 202
POST /api/resend    {"email"}                                              -> 202
GET  /api/consent   -> the consent text and version to show, and the sections

Answers are the same whether or not the address is known (no enumeration). No CSRF token: the
API takes only `application/json`, which a cross-site page cannot send without a CORS preflight
that this app never grants, and it acts on no cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from digest.web.apierrors import ErrorBody
from digest.web.guards import Refused, rate_limit, retry_after
from digest.web.site import Site, evidence, site_of
from subscribers.consent import check_consent_version
from subscribers.errors import InvalidEmail, InvalidName, InvalidSections, StaleConsentText
from subscribers.optin import Notice, resend_confirmation, subscribe

router = APIRouter(prefix="/api")

M = TypeVar("M", bound=BaseModel)

SOURCE = "JSON API"
ACCEPTED = {
    "status": "accepted",
    "message": "If this address can be subscribed, an email with a confirmation link is on "
    "its way to it.",
}


NUL_ERROR = "nul_character"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError(NUL_ERROR, "contains a NUL character")
    return value


# Every string the API takes: no NUL (PostgreSQL text cannot hold one; it is a 400).
Text = Annotated[str, AfterValidator(_no_nul)]
Section = Annotated[Text, Field(max_length=200)]


class SubscribeRequest(BaseModel):
    """POST /api/subscribe. Strict types (a number is not an address, a string is not a list),
    every size bounded; the name is cleaned and its length checked by subscribers.names."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: Annotated[Text, Field(max_length=320)]
    name: Annotated[Text, Field(max_length=1000)] | None = None
    sections: (
        Annotated[list[Annotated[Text, Field(max_length=200)]], Field(max_length=100)] | None
    ) = None
    consent_text_version: Annotated[Text, Field(max_length=64)] | None = None


class ResendRequest(BaseModel):
    """POST /api/resend."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: Annotated[Text, Field(max_length=320)]


def error(status: int, field: str | None, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "error": {"field": field, "message": message}},
        status_code=status,
        headers=headers or None,
    )


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading the body as `model`, or refusing it with the API's JSON error:
    415 for another media type, 400 for what is not JSON (a number of 5,000 digits, arrays
    nested 5,000 deep, invalid UTF-8: pydantic's parser refuses them all) or carries a NUL,
    422 naming the first field that does not fit. A body over the route's limit is a 413
    (digest/web/bodies.py) raised while it is read."""

    async def read(request: Request) -> M:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Refused(error(415, None, "send the request as application/json"))
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as exc:
            raise Refused(_refusal(exc)) from None

    return read


def _refusal(exc: ValidationError) -> JSONResponse:
    problems = exc.errors(include_url=False, include_input=False)
    for problem in problems:
        if problem["type"] == "json_invalid":
            return error(400, None, f"the body is not JSON: {problem['msg']}")
    first = next((p for p in problems if p["type"] == NUL_ERROR), problems[0])
    field = ".".join(str(p) for p in first["loc"]) or None
    return error(400 if first["type"] == NUL_ERROR else 422, field, first["msg"])


def too_many(site: Site, request: Request, wait: float) -> JSONResponse:
    return error(
        429, None, "too many requests from this address", **{"Retry-After": retry_after(wait)}
    )


class Accepted(BaseModel):
    status: str
    message: str


class ConsentText(BaseModel):
    version: str
    text: str
    sections: list[str]


def documented(model: type[BaseModel], *codes: int) -> dict[str, Any]:
    """The OpenAPI of a route that reads its JSON body itself (json_body): the body's schema,
    and the errors it answers, so the schema (/api/openapi.json) tells the whole truth."""
    errors = {
        code: {"model": ErrorBody, "description": PUBLIC_ERRORS[code]}
        for code in (400, 415, 422, 429, *codes)
    }
    errors[413] = {
        "model": ErrorBody,
        "description": "The body is over 16 KB (refused while it streams; the connection closes).",
    }
    return {
        "responses": {202: {"model": Accepted, "description": "The same answer for everyone."}}
        | errors,
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": model.model_json_schema()}},
            }
        },
    }


PUBLIC_ERRORS = {
    400: "The body is not JSON.",
    409: "The consent text changed: show GET /api/consent and send its version.",
    415: "The body is not application/json.",
    422: "A field is wrong; `error.field` names it.",
    429: "Too many requests from this address (Retry-After says how long to wait).",
}


# Declared after the body in each handler's signature: FastAPI resolves dependencies in that
# order, so a malformed body is refused (415/400/422) without counting against the limit.
Limited = Annotated[None, Depends(rate_limit(too_many))]
SubscribeBody = Annotated[SubscribeRequest, Depends(json_body(SubscribeRequest))]
ResendBody = Annotated[ResendRequest, Depends(json_body(ResendRequest))]


@router.get("/consent", response_model=ConsentText)
def consent(request: Request) -> dict[str, Any]:
    site = site_of(request)
    sub = site.settings.subscribers
    return {
        "version": sub.consent_text_version,
        "text": sub.consent_text,
        "sections": list(site.rules.sections),
    }


@router.post(
    "/subscribe", status_code=202, response_model=None, **documented(SubscribeRequest, 409)
)
async def api_subscribe(
    request: Request, background: BackgroundTasks, body: SubscribeBody, _: Limited
) -> JSONResponse:
    site = site_of(request)
    version = site.settings.subscribers.consent_text_version
    try:
        check_consent_version(body.consent_text_version, version)
    except StaleConsentText as exc:
        message = f"{exc}; show GET /api/consent and send its version"
        return error(409, "consent_text_version", message)
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
    except InvalidName as exc:
        return error(422, "name", str(exc))
    except InvalidSections as exc:
        return error(422, "sections", str(exc))
    except IntegrityError:
        notice = None  # the same address twice at once: the other request sends the email
    if notice is not None:
        site.schedule(background, notice)
    return JSONResponse(ACCEPTED, status_code=202)


@router.post("/resend", status_code=202, response_model=None, **documented(ResendRequest))
async def api_resend(
    request: Request, background: BackgroundTasks, body: ResendBody, _: Limited
) -> JSONResponse:
    site = site_of(request)

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
