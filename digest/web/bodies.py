"""Request bodies: each route's size limit, held while the body streams, and a time limit.

A chunked request carries no Content-Length, so a check of that header alone lets any body
through: the server would read 200 MB of zeros before a handler saw it. Here every read goes
through a counter; the read that crosses the route's limit raises `BodyTooLarge` instead of
returning, so nothing past the limit is ever held, and the answer is a 413 that closes the
connection (the rest of the body is never read). A declared Content-Length over the limit is
answered 413 before the app runs (and before uvicorn answers an `Expect: 100-continue`). A
body that is not complete within `body_timeout_s` of its first read gets a 408, also closing
the connection: a client trickling bytes holds a connection, not a worker.

Inside FastAPI a refusal is an HTTPException that the app's own handler answers; refusals the
middleware answers itself (a declared length, the one-click endpoint outside FastAPI) go to
the same handler (`answer`), so a route's clients get one format whichever way they sent.

A handler that answers without reading its request's body (a refusal on headers alone, like
the webhook's) gets `Connection: close` added to its answer for the same reason: uvicorn would
otherwise go on reading and discarding whatever the client still sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KB = 1024
# Forms, the one-click POST, and anything not named below: a form is a few hundred bytes.
DEFAULT_LIMIT = 64 * KB
# The JSON API: an address, a name and a few section names.
API_LIMIT = 16 * KB
# SendGrid's event batches: about a thousand events, well under a megabyte; room to spare.
WEBHOOK_LIMIT = 16 * KB * KB
# Path prefix -> limit; the first match wins.
LIMITS: tuple[tuple[str, int], ...] = (("/webhooks/", WEBHOOK_LIMIT), ("/api/", API_LIMIT))
CLOSE = (b"connection", b"close")
# How a refusal is answered: the app's handler for HTTPException.
Answer = Callable[[Request, Exception], Awaitable[Response]]


class BodyTooLarge(HTTPException):
    """Raised by a body read that would cross the route's limit. An HTTPException, so that
    FastAPI's body parsing passes it on (any other error there becomes a 400) and the app's
    error handler answers it in the route's own format."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than this address accepts ({_size(limit)}).",
            headers={"Connection": "close"},
        )


class BodyTimeout(HTTPException):
    """Raised by a body read still waiting when the body's time is up."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"The request body did not arrive within {seconds:g} seconds.",
            headers={"Connection": "close"},
        )


def limit_for(path: str, limits: Sequence[tuple[str, int]] = LIMITS) -> int:
    for prefix, limit in limits:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


def _size(limit: int) -> str:
    return f"{limit // (KB * KB)} MB" if limit >= KB * KB else f"{limit // KB} KB"


async def plain_answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(f"{exc.detail}\n", exc.status_code, headers=exc.headers)


class BodyLimits:
    """Pure ASGI middleware: wraps `receive` with the route's size and time limits."""

    def __init__(self, app: ASGIApp, body_timeout_s: float, answer: Answer = plain_answer) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(scope, receive, limit_for(str(scope.get("path", ""))), self.body_timeout_s)
        if body.declared is not None and body.declared > body.limit:
            await self._refuse(scope, receive, send, BodyTooLarge(body.limit))
            return
        started = False

        async def send_closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body.complete:
                    message["headers"] = [*message.get("headers", []), CLOSE]
            await send(message)

        try:
            await self.app(scope, body.receive, send_closing)
        except (BodyTooLarge, BodyTimeout) as exc:
            # Only apps outside FastAPI's error handling get here (the one-click endpoint).
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
        response = await self.answer(Request(scope, receive), exc)
        response.headers["connection"] = "close"
        await response(scope, receive, send)


class _Body:
    """One request's body as the app reads it: counted, timed, refused past its limits."""

    def __init__(self, scope: Scope, receive: Receive, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self.limit = limit
        self.timeout_s = timeout_s
        self.declared = _declared_length(scope)
        self.complete = not self.declared and not _chunked(scope)
        self.received = 0
        self.refusal: HTTPException | None = None
        self._deadline: float | None = None

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()  # after the body: disconnect notices, untimed
        if self.refusal is not None:
            raise self.refusal
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self.timeout_s
        try:
            async with asyncio.timeout_at(self._deadline):  # a timer, not a task per read
                message = await self._receive()
        except TimeoutError:
            raise self._refuse(BodyTimeout(self.timeout_s)) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise self._refuse(BodyTooLarge(self.limit))
            self.complete = not message.get("more_body", False)
        return message

    def _refuse(self, refusal: HTTPException) -> HTTPException:
        self.refusal = refusal
        return refusal


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, None without one; a malformed one counts as too large."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return 1 << 62
    return None


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", []))
