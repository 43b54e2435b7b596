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

On SQLite the requests that arrive together are committed together (group commit): a
transaction with its commit costs more than the statements of one unsubscribe, and the event
loop would otherwise run one per request. Each request is still answered only after the
transaction that carries it has committed. WAL checkpoints, which write and fsync the database
file, run in a thread of their own (`Checkpoints`) instead of inside those commits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from functools import cache

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.web.pages import environment, stylesheet
from digest.web.security import MAX_BODY_BYTES
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
log = logging.getLogger(__name__)


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
        self._waiting: list[tuple[str, Evidence, asyncio.Future[None]]] = []
        engine = site.sessions.kw["bind"]
        assert isinstance(engine, Engine)
        self._engine = engine
        self._checkpoints = Checkpoints(engine)
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
            await self._together(public_id, proof)
        else:
            await run_in_threadpool(self._unsubscribe, [(public_id, proof)])
        await _answer(send, 200, b"text/html; charset=utf-8", self.page)

    async def _together(self, public_id: str, proof: Evidence) -> None:
        """Group commit: wait for the transaction that carries this request and the others
        that arrived in the same turn of the event loop. It runs one turn later (call_soon),
        once every request read by now has queued; the answer waits for its commit."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._commit_waiting)
        self._waiting.append((public_id, proof, committed))
        await committed

    def _commit_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            self._unsubscribe_inline([(public_id, proof) for public_id, proof, _ in batch])
        except Exception:
            # The shared transaction was rolled back: each request on its own, so that one
            # request's failure is its answer only.
            for public_id, proof, committed in batch:
                try:
                    self._unsubscribe_inline([(public_id, proof)])
                except Exception as exc:
                    _settle(committed, exc)
                else:
                    _settle(committed, None)
            return
        for _, _, committed in batch:
            _settle(committed, None)

    def _unsubscribe_inline(self, requests: list[tuple[str, Evidence]]) -> None:
        """One transaction on the event loop (SQLite). Its commit leaves the WAL to the
        checkpoint thread: SQLite would otherwise copy the WAL into the database file, with
        two fsyncs, inside every commit that finds it over 1,000 pages (every ~10 bursts),
        and the whole server would wait for the disk."""
        site = self.site
        with site.write_lock, self._engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            (usual,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
            raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with connection.begin():
                    unsubscribe_public_ids(connection, requests, now=site.clock(), keys=site.keys)
            finally:
                raw.execute(f"PRAGMA wal_autocheckpoint={int(usual)}")
        self._checkpoints.wrote()

    def _unsubscribe(self, requests: list[tuple[str, Evidence]]) -> None:
        site = self.site
        with site.write_core() as connection:
            unsubscribe_public_ids(connection, requests, now=site.clock(), keys=site.keys)


class Checkpoints:
    """Copies the SQLite WAL into the database file (a PASSIVE checkpoint, which never blocks
    a writer) in a thread of its own, at most every `pause_s` while writes go on. The thread
    starts with the first write and ends after `idle_s` without one."""

    def __init__(self, engine: Engine, *, pause_s: float = 0.05, idle_s: float = 5.0) -> None:
        self.engine = engine
        self.pause_s = pause_s
        self.idle_s = idle_s
        self.done = 0  # checkpoints run
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def wrote(self) -> None:
        self._wake.set()
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="digest-wal-checkpoints", daemon=True).start()

    def _run(self) -> None:
        while True:
            while self._wake.wait(self.idle_s):
                self._wake.clear()
                self.checkpoint()
                time.sleep(self.pause_s)
            with self._lock:
                if not self._wake.is_set():
                    self._running = False
                    return

    def checkpoint(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one, or SQLite's own at the last close, catches up
            log.warning("WAL checkpoint failed", exc_info=True)
        self.done += 1


def _settle(committed: asyncio.Future[None], error: Exception | None) -> None:
    if committed.done():  # its request was cancelled meanwhile
        return
    if error is None:
        committed.set_result(None)
    else:
        committed.set_exception(error)


async def _body(receive: Receive) -> bytes:
    """The request body (drained so the connection can be reused), capped."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        chunk: bytes = message.get("body", b"")
        body = (body + chunk)[:MAX_BODY_BYTES]
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
