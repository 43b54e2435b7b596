"""The staff API's errors: JSON with a message and, where one applies, the field.

    {"status": "error", "error": {"field": "article", "message": "no stored article has ..."}}

(the same shape as the public API's). Routes call the core and let its exceptions rise; the
app's handlers below turn them into answers: a DigestError by its kind (the CLI's exit code has
an HTTP twin), a request that does not match the schema into 422 naming the field. A route
names the body field a core error is about with `about("article")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from digest import errors

# DigestError kind -> HTTP status. Anything else a DigestError says is the client's to fix: 400.
STATUS: tuple[tuple[type[errors.DigestError], int], ...] = (
    (errors.AccessError, 401),  # NotSignedIn 401, Forbidden 403: their own `status`
    (errors.NotFoundError, 404),
    (errors.UsageError, 422),
    (errors.EditionStateError, 409),
    (errors.PreflightError, 409),  # the body carries the report
    (errors.EmptyAudienceError, 409),
    (errors.SubscriberStateError, 409),
    (errors.RenderError, 409),
    (errors.DeliveryError, 502),
    (errors.ConfigError, 500),
)


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    status: str = "error"
    error: ErrorDetail


def api_error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"status": "error", "error": {"field": field, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: errors.DigestError) -> int:
    if isinstance(exc, errors.AccessError):
        return exc.status
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


@contextmanager
def about(field: str, *, not_found: int = 422) -> Iterator[None]:
    """Core errors raised inside are about the body's `field`: an unknown article named in the
    body is the request's mistake (422), not a missing page (404)."""
    try:
        yield
    except errors.DigestError as exc:
        exc.field = field  # type: ignore[attr-defined]
        if isinstance(exc, errors.NotFoundError):
            exc.status_override = not_found  # type: ignore[attr-defined]
        raise


async def digest_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.DigestError)
    status = getattr(exc, "status_override", None) or status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    response = api_error(status, str(exc), getattr(exc, "field", None), headers)
    extra = getattr(exc, "report", None)  # a preflight failure carries its report
    if extra is not None and hasattr(extra, "as_json"):
        body: dict[str, Any] = {
            "status": "error",
            "error": {"field": None, "message": str(exc)},
            "report": extra.as_json(),
        }
        response = JSONResponse(body, status_code=status, headers=headers)
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    """A body or parameter that does not match the schema: 422 naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    return api_error(422, str(first.get("msg", "invalid request")), ".".join(loc) or None)


RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "The body is not JSON (or not UTF-8)."),
        (401, "Not signed in: no token, or a wrong, revoked or expired one."),
        (403, "Signed in, but the role does not allow it (or no CSRF token with a session)."),
        (422, "A field is missing or wrong; `error.field` names it."),
        (429, "Too many failed sign-ins or tokens from this address: wait (Retry-After)."),
    )
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such edition (or subscriber)."}
}


class PreflightRefusal(ErrorBody):
    report: dict[str, Any] | None = None


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": PreflightRefusal,
        "description": "The edition's state does not allow it, or it failed preflight "
        "(`report` holds the preflight report).",
    }
}
