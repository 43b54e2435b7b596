"""What every request handler shares: settings, the database, the signing keys, the rules, the
clock, the mailer, the rate limits (kept in the database, shared by every process), the staff
session cookies and the sends this process delivers. One `Site` per app, on `app.state.site`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import BackgroundTasks, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import EmailBackend
from digest.config import Settings
from digest.people.audience import policy
from digest.people.notify import Welcome, send_notice, send_welcome
from digest.send.background import Sends
from digest.staff.sessions import Cookies
from digest.store.db import transaction
from digest.store.ratelimit import BoundLimit, Limit, Limiter
from digest.web.pages import Pages
from digest.web.security import Csrf
from subscribers.consent import Evidence
from subscribers.optin import Notice
from subscribers.policy import Policy

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Site:
    settings: Settings
    sessions: sessionmaker[Session]
    keys: list[str]
    rules: Policy
    pages: Pages
    csrf: Csrf
    # The database's rate limits (digest.store.ratelimit), and the per-IP limit of every
    # endpoint that can send a confirmation email, bound to it.
    limits: Limiter
    limiter: BoundLimit
    cookies: Cookies
    sends: Sends
    clock: Clock = _utcnow
    backend: EmailBackend | None = None
    # SQLite has one writer; queueing writers here keeps threads from spinning on its busy
    # handler (and a deferred transaction's read->write upgrade from failing outright).
    write_lock: AbstractContextManager[object] = field(default_factory=nullcontext)
    # SQLite writes are serialized and take a fraction of a millisecond: handing one to a
    # worker thread costs more than doing it on the event loop. A server database's network
    # round trips must not block the loop, so there they go to the threadpool.
    inline_writes: bool = False
    _pending: int = 0
    _sending: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        sqlite: bool,
        clock: Clock | None = None,
        backend: EmailBackend | None = None,
    ) -> Site:
        web = settings.web
        keys = settings.secret_keys()
        csrf = Csrf(keys, secure=web.base_url.startswith("https://"))
        engine = sessions.kw["bind"]
        assert isinstance(engine, Engine)
        write_lock: AbstractContextManager[object] = threading.Lock() if sqlite else nullcontext()
        limits = Limiter(engine, write_lock)
        subscribe = Limit(
            "subscribe-ip",
            web.subscribe_ip_limit,
            timedelta(minutes=web.subscribe_ip_window_minutes),
        )
        return cls(
            settings=settings,
            sessions=sessions,
            keys=keys,
            rules=policy(settings),
            pages=Pages(settings.publication.name, settings.newsletter.title, csrf),
            csrf=csrf,
            limits=limits,
            limiter=limits.bound(subscribe),
            cookies=Cookies(keys),
            sends=Sends(sessions, settings, clock or _utcnow, backend),
            clock=clock or _utcnow,
            backend=backend,
            write_lock=write_lock,
            inline_writes=sqlite,
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write: committed on success, rolled back on error."""
        with self.write_lock, transaction(self.sessions) as session:
            yield session

    @contextmanager
    def write_core(self) -> Iterator[Connection]:
        """The same for Core statements (the one-click hot path), without an ORM session."""
        engine = self.sessions.kw["bind"]
        assert isinstance(engine, Engine)
        with self.write_lock, engine.begin() as connection:
            yield connection

    def schedule(self, background: BackgroundTasks, notice: Notice) -> None:
        """Send after the response (a background task): the answer never waits for the mail
        provider, and takes the same time whether or not an email goes out."""
        with self._sending:
            self._pending += 1
        background.add_task(self._send, notice)

    def schedule_welcome(self, background: BackgroundTasks, welcome: Welcome) -> None:
        """The welcome email, sent the same way after the response."""
        with self._sending:
            self._pending += 1
        background.add_task(self._send, welcome)

    def _send(self, mail: Notice | Welcome) -> None:
        try:
            if isinstance(mail, Welcome):
                send_welcome(self.settings, mail, self.backend)
            else:
                send_notice(self.settings, mail, self.backend)
        finally:
            with self._sending:
                self._pending -= 1
                self._sending.notify_all()

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every scheduled email has been handed to the backend (tests, shutdown)."""
        with self._sending:
            return self._sending.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def url(self, path: str) -> str:
        return f"{self.settings.web.base_url}{path}"

    def redirect(self, path: str) -> RedirectResponse:
        """A 303 to one of our own pages, built from [web] base_url, never from the request's
        Host header (which the client chooses: a redirect built from it can point anywhere)."""
        return RedirectResponse(self.url(path), status_code=303)


def site_of(request: Request) -> Site:
    site = request.app.state.site
    assert isinstance(site, Site)
    return site


def client_ip(request: Request) -> str:
    """The client's address as uvicorn saw it (behind [web] trusted_proxies, the forwarded one)."""
    return request.client.host if request.client else "unknown"


def evidence(request: Request, source: str, *, consent_version: str | None = None) -> Evidence:
    return Evidence(
        source=source,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        consent_text_version=consent_version,
    )
