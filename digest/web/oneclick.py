"""POST `{base_url}/u/{token}`: RFC 8058 one-click unsubscribe, as a bare ASGI endpoint.

Mailbox providers send `List-Unsubscribe=One-Click` as application/x-www-form-urlencoded or
multipart/form-data, with no cookie, login or CSRF token, and need a 2xx without a redirect
(docs/standards.md §1). So this reads nothing but the token in the URL (the body is drained, never
parsed), is idempotent, and answers the same 200 page for every genuine token, whether its
subscriber exists, was erased or left long ago: nothing is given away. Only a token that fails
its signature gets a 400.

It runs in front of FastAPI's router, and the database work is three Core statements
(subscribers/oneclick.py): the full framework path cost ~5 ms a request, and providers may send
these as fast as people press the button (goal: 1,000/s, p99 <= 50 ms on SQLite).

On SQLite the requests that arrive together are committed together (store/groupcommit.py): a
transaction with its commit costs more than the statements of one unsubscribe, and the event
loop would otherwise run one per request. Each request is still answered only after the
transaction that carries it has committed.
"""

from __future__ import annotations

import re
from functools import cache

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.store.groupcommit import GroupCommit
from digest.web.bodies import DEFAULT_LIMIT
from digest.web.pages import environment, stylesheet
from digest.web.site import Site
from subscribers.consent import Evidence
from subscribers.oneclick import UnsubscribeTokens, unsubscribe_public_ids
from subscribers.tokens import TokenError

ONE_CLICK_SOURCE = "one-click unsubscribe (List-Unsubscribe-Post)"
PAGE_SOURCE = "unsubscribe page"
# The unsubscribe page's form marks itself, so the evidence tells a person from a provider.
PAGE_MARK = b"via=page"
_PATH = re.compile(r"/u/([^/]+)")
_INVALID = b"This unsubscribe link is not valid."


@cache
def done_page(publication: str, title: str) -> bytes:
    """The one answer to every genuine POST, rendered once: no cookie, no per-request work."""
    template = environment().get_template("unsubscribed.html")
    return template.render(publication=publication, title=title, css=stylesheet()).encode()


class OneClick:
    """Answers POST /u/{token}; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site
        engine = site.sessions.kw["bind"]
        assert isinstance(engine, Engine)
        self._together = GroupCommit(engine, self._write, site.write_lock)
        self._tokens = UnsubscribeTokens(site.keys)
        self.page = done_page(site.settings.publication.name, site.settings.newsletter.title)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            public_id = self._tokens.read(match[1])
        except TokenError:
            await _answer(send, 400, b"text/plain; charset=utf-8", _INVALID)
            return
        body = await _body(receive)
        source = PAGE_SOURCE if PAGE_MARK in body else ONE_CLICK_SOURCE
        proof = Evidence(source=source, ip=_client(scope), user_agent=_header(scope, b"user-agent"))
        if self.site.inline_writes:
            await self._together.submit((public_id, proof))
        else:
            await run_in_threadpool(self._unsubscribe, [(public_id, proof)])
        await _answer(send, 200, b"text/html; charset=utf-8", self.page)

    def _write(self, connection: Connection, requests: list[tuple[str, Evidence]]) -> None:
        unsubscribe_public_ids(connection, requests, now=self.site.clock(), keys=self.site.keys)

    def _unsubscribe(self, requests: list[tuple[str, Evidence]]) -> None:
        with self.site.write_core() as connection:
            self._write(connection, requests)


async def _body(receive: Receive) -> bytes:
    """The request body (drained so the connection can be reused), capped."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        chunk: bytes = message.get("body", b"")
        body = (body + chunk)[:DEFAULT_LIMIT]
        if not message.get("more_body", False):
            return body


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
