"""Shared pieces of the staff tests: accounts with tokens, and a running app holding the demo
week's edition, subscribers and two staff members (a publisher and an editor) with API clients."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from digest.edition.build import build_edition
from digest.staff import accounts, tokens
from digest.store.db import transaction
from digest.store.models import EDITOR, PUBLISHER
from tests.conftest import DEMO_NOW
from tests.send_helpers import SECTIONS, add_subscribers
from tests.subscribers_helpers import LiveServer, Web, start_web

PASSWORD = "correct horse battery staple"
PUBLISHER_EMAIL = "pat.publisher@meridianreview.example"
EDITOR_EMAIL = "eddie.editor@meridianreview.example"


def add_staff(
    factory: sessionmaker[Session], email: str, role: str, now: datetime = DEMO_NOW
) -> str:
    """A staff member with PASSWORD and one API token; the token."""
    with transaction(factory) as session:
        accounts.add(session, email, role, PASSWORD, now)
        _, token = tokens.issue(session, email, "tests", now)
    return token


@dataclass
class StaffWeb:
    web: Web
    live: LiveServer
    edition_id: int
    publisher_token: str
    editor_token: str

    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        """A client of the app (closed with it), with `token` as its Bearer token."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        made = httpx.Client(base_url=self.web.url, headers=headers, timeout=30)
        self.clients.append(made)
        return made

    @cached_property
    def publisher(self) -> httpx.Client:
        return self.client(self.publisher_token)

    @cached_property
    def editor(self) -> httpx.Client:
        return self.client(self.editor_token)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.web.site.sends.stop()
        self.live.stop()
        self.web.close()


def page_token(html: str, name: str = "csrf-token") -> str:
    found = re.search(rf'<meta name="{name}" content="([^"]+)"', html)
    assert found is not None, f"no {name} on the page"
    return found.group(1)


@dataclass
class Console:
    """A staff member signed in to the console with httpx, as a browser without script."""

    client: httpx.Client
    csrf: str  # the session's own token, which every console form carries

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def post(self, path: str, **form: Any) -> httpx.Response:
        """A console form as the page sends it (its CSRF token included); not followed."""
        return self.client.post(path, data={"csrf_token": self.csrf, **form})

    def submit(self, path: str, **form: Any) -> httpx.Response:
        """The form, then the page its answer redirects to (or the refusal page itself)."""
        answer = self.post(path, **form)
        if answer.status_code != 303:
            return answer
        return self.client.get(answer.headers["location"])


def sign_in(staff_web: StaffWeb, email: str = PUBLISHER_EMAIL) -> Console:
    client = staff_web.client()
    login = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    data = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/staff/login", data=data).status_code == 303
    home = client.get("/staff")
    assert home.status_code == 200, home.text
    return Console(client, page_token(home.text))


def start_staff_web(tmp_path: Path, db_path: Path, **overrides: Any) -> StaffWeb:
    web, live = start_web(tmp_path, db_path, **overrides)
    report = build_edition(web.factory, web.settings, DEMO_NOW, actor="cron")
    add_subscribers(web.factory, 6, DEMO_NOW, sections=[None, ["Europe", "Asia"], ["Diplomacy"]])
    return StaffWeb(
        web=web,
        live=live,
        edition_id=report.edition.id,
        publisher_token=add_staff(web.factory, PUBLISHER_EMAIL, PUBLISHER),
        editor_token=add_staff(web.factory, EDITOR_EMAIL, EDITOR),
    )


__all__ = ["SECTIONS", "Console", "StaffWeb", "add_staff", "sign_in", "start_staff_web"]
