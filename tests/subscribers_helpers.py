"""Shared pieces of the subscriber and web tests: a live uvicorn on 127.0.0.1:0 serving
create_app, a clock the tests move, and readers for the outbox's .eml files and the pages' forms.

The `web` fixture, built with start_web, lives in tests/web/conftest.py.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings, load_settings
from digest.store.db import make_engine, session_factory
from digest.web.app import create_app
from digest.web.server import options as server_options
from digest.web.site import Site
from tests.conftest import DEMO_NOW, ROOT, TEST_SECRET

SECTIONS = ("Middle East", "Europe", "Asia", "Military Industrial Complex", "Diplomacy")


@dataclass
class Clock:
    """The app's `now`, frozen until a test moves it."""

    now: datetime = DEMO_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class LiveServer:
    """uvicorn serving `app` in a thread, on a socket bound before the app is built (so the
    app's base_url can name the real port)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, app: Any, **options: Any) -> None:
        """Serve `app`; `options` are uvicorn.Config's (digest.web.server.options: the
        protocol with the header timeout, as `digest serve` runs it)."""
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
        self.sock.close()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def web_settings(tmp_path: Path, db_path: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": {"url": f"sqlite:///{db_path}"},
        "delivery": {"backend": "outbox", "outbox_dir": str(tmp_path / "outbox")},
        "web": {"base_url": base_url},
        "secret_key": TEST_SECRET,
    }
    web = {"base_url": base_url, **overrides.pop("web", {})}  # base_url unless given
    values.update(overrides, web=web)
    return load_settings(ROOT / "digest.toml", **values)


@dataclass
class Web:
    """A running app and what a test needs to drive and inspect it."""

    url: str
    settings: Settings
    clock: Clock
    client: httpx.Client
    factory: sessionmaker[Session]
    outbox: Path
    site: Site
    keys: list[str] = field(default_factory=lambda: [TEST_SECRET])

    def session(self) -> Session:
        return self.factory()

    def path(self, url: str) -> str:
        assert url.startswith(self.url), url
        return url[len(self.url) :]

    def close(self) -> None:
        """After the server stopped: the client, the test's engine and the app's engine."""
        self.client.close()
        for factory in (self.factory, self.site.sessions):
            engine = factory.kw["bind"]
            assert isinstance(engine, Engine)
            engine.dispose()

    def settle(self) -> None:
        """Wait for the emails the app scheduled after its answers (background tasks)."""
        assert self.site.drain(), "an email was still being sent after 10 s"

    def messages(self) -> list[EmailMessage]:
        self.settle()
        return read_outbox(self.outbox)

    def subscribe(self, address: str, **form: Any) -> httpx.Response:
        page = self.client.get("/subscribe")
        data = {
            "email": address,
            "sections": list(SECTIONS),
            "csrf_token": csrf_token(page.text),
            "consent_text_version": self.settings.subscribers.consent_text_version,
        }
        data.update(form)
        return self.client.post("/subscribe", data=data)

    def confirm_link(self, message: EmailMessage | None = None) -> str:
        msg = message or self.messages()[-1]
        return self.path(link(msg, "/confirm/"))

    def confirm(self, address: str) -> httpx.Response:
        """Subscribe and confirm through the pages, as a person would."""
        self.subscribe(address)
        target = self.confirm_link()
        page = self.client.get(target)
        return self.client.post(target, data={"csrf_token": csrf_token(page.text)})


def start_web(
    tmp_path: Path, db_path: Path, clock: Clock | None = None, **overrides: Any
) -> tuple[Web, LiveServer]:
    live = LiveServer(bound_socket())
    try:
        settings = web_settings(tmp_path, db_path, live.url, **overrides)
        clock = clock or Clock()
        app = create_app(settings, clock=clock)
        live.start(app, **server_options(settings))
    except BaseException:
        live.sock.close()  # not left for the garbage collector to report in a later test
        raise
    engine = make_engine(settings.database_url)
    web = Web(
        url=live.url,
        settings=settings,
        clock=clock,
        client=httpx.Client(base_url=live.url, timeout=10),
        factory=session_factory(engine),
        outbox=settings.outbox_path,
        site=app.state.site,
    )
    return web, live


def read_outbox(outbox: Path) -> list[EmailMessage]:
    """Every .eml in the outbox, oldest first."""
    paths = sorted(outbox.rglob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in paths
    ]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link(msg: EmailMessage, marker: str) -> str:
    found = re.search(rf"(https?://\S+{re.escape(marker)}\S+)", text_of(msg))
    assert found, f"no {marker} link in the email"
    return found.group(1)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)
