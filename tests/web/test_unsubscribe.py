"""`/u/{token}`: a GET page that changes nothing, and RFC 8058 one-click on POST, hit the way
Gmail hits it (docs/standards.md §1: urlencoded `List-Unsubscribe=One-Click`, Content-Length 26)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import main
from digest.config import Settings
from digest.store.db import make_engine
from digest.store.groupcommit import Checkpoints
from digest.web import oneclick as web_oneclick
from digest.web.app import create_app
from subscribers.consent import Evidence
from subscribers.lifecycle import Policy, add_confirmed, erase, find_by_email
from subscribers.models import ACTIVE, UNSUBSCRIBED, Consent
from subscribers.tokens import MANAGE, UNSUBSCRIBE, make_token
from tests.conftest import EXAMPLES, ROOT, TEST_SECRET
from tests.subscribers_helpers import (
    SECTIONS,
    Clock,
    Web,
    link,
    read_outbox,
    start_web,
)


def subscriber(web: Web, address: str = "reader@example.com") -> str:
    """An active subscriber; returns their unsubscribe path, as digest/send.py builds it."""
    with web.session() as session, session.begin():
        add_confirmed(
            session,
            address,
            evidence=Evidence("test fixture"),
            now=web.clock(),
            keys=web.keys,
            policy=Policy(SECTIONS),
        )
        public_id = find_by_email(session, address).public_id  # type: ignore[union-attr]
    return f"/u/{make_token(web.keys, UNSUBSCRIBE, public_id, web.clock())}"


def status_of(web: Web, address: str = "reader@example.com") -> str | None:
    with web.session() as session:
        sub = find_by_email(session, address)
        return None if sub is None else sub.status


def raw_request(web: Web, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send bytes exactly as given; return the status line, headers and body."""
    parts = urlsplit(web.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def gmail_post(web: Web, path: str) -> tuple[str, dict[str, str], bytes]:
    """The request of Gmail's sender guidelines, byte for byte (plus Connection: close)."""
    host = urlsplit(web.url).netloc
    return raw_request(
        web,
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 26\r\n"
        "Connection: close\r\n"
        "\r\n"
        "List-Unsubscribe=One-Click".encode(),
    )


def test_the_exact_gmail_request_unsubscribes_with_200_and_no_redirect(web: Web) -> None:
    path = subscriber(web)
    status, headers, body = gmail_post(web, path)
    assert status == "HTTP/1.1 200 OK"
    assert "location" not in headers and "set-cookie" not in headers
    assert b"You are unsubscribed" in body
    assert status_of(web) == UNSUBSCRIBED


def test_a_multipart_one_click_post_unsubscribes(web: Web) -> None:
    path = subscriber(web)
    response = web.client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert status_of(web) == UNSUBSCRIBED


def test_an_empty_post_unsubscribes(web: Web) -> None:
    path = subscriber(web)
    assert web.client.post(path, content=b"").status_code == 200
    assert status_of(web) == UNSUBSCRIBED


def test_cookies_and_a_missing_csrf_token_do_not_matter(web: Web) -> None:
    path = subscriber(web)
    web.client.cookies.set("digest_csrf", "not-even-valid")
    response = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and status_of(web) == UNSUBSCRIBED


def test_posting_twice_is_harmless_and_answers_the_same(web: Web) -> None:
    path = subscriber(web)
    first = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    second = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content
    with web.session() as session:
        events = session.scalars(select(Consent.event)).all()
    assert events.count("unsubscribe") == 1


def test_unknown_and_erased_tokens_get_the_same_answer_as_real_ones(web: Web) -> None:
    real = web.client.post(subscriber(web, "real@example.com"))
    unknown_path = f"/u/{make_token(web.keys, UNSUBSCRIBE, 'f' * 32, web.clock())}"
    erased_path = subscriber(web, "erased@example.com")
    with web.session() as session, session.begin():
        sub = find_by_email(session, "erased@example.com")
        erase(session, sub, now=web.clock(), keys=web.keys)  # type: ignore[arg-type]
    unknown = web.client.post(unknown_path)
    erased = web.client.post(erased_path)
    assert {r.status_code for r in (real, unknown, erased)} == {200}
    assert real.content == unknown.content == erased.content
    assert real.headers.keys() == unknown.headers.keys() == erased.headers.keys()


def test_a_forged_token_is_refused_without_a_redirect(web: Web) -> None:
    path = subscriber(web)
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    response = web.client.post(forged, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400 and "location" not in response.headers
    assert status_of(web) == ACTIVE


def test_a_manage_token_cannot_unsubscribe(web: Web) -> None:
    path = subscriber(web)
    public_id = path.split("/")[-1].split(".")[0]
    manage = make_token(web.keys, MANAGE, public_id, web.clock())
    assert web.client.post(f"/u/{manage}").status_code == 400
    assert status_of(web) == ACTIVE


def test_get_shows_a_button_and_changes_nothing(web: Web) -> None:
    path = subscriber(web)
    page = web.client.get(path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    assert "r•••@example.com" in page.text and "reader@example.com" not in page.text
    assert status_of(web) == ACTIVE


def test_the_page_button_unsubscribes_and_is_recorded_as_the_page(web: Web) -> None:
    path = subscriber(web)
    web.client.get(path)
    web.client.post(path, data={"List-Unsubscribe": "One-Click", "via": "page"})
    gmail_post(web, subscriber(web, "other@example.com"))
    with web.session() as session:
        sources = session.scalars(
            select(Consent.source).where(Consent.event == "unsubscribe").order_by(Consent.id)
        ).all()
    assert sources == ["unsubscribe page", "one-click unsubscribe (List-Unsubscribe-Post)"]


def test_the_one_click_event_keeps_the_requests_ip_and_user_agent(web: Web) -> None:
    path = subscriber(web)
    web.client.post(path, headers={"User-Agent": "Google-Unsubscribe"})
    with web.session() as session:
        event = session.scalars(select(Consent).where(Consent.event == "unsubscribe")).one()
    assert (event.ip, event.user_agent) == ("127.0.0.1", "Google-Unsubscribe")


def test_get_after_leaving_says_so_without_a_button(web: Web) -> None:
    path = subscriber(web)
    web.client.post(path)
    page = web.client.get(path)
    assert page.status_code == 200 and "You are unsubscribed" in page.text
    assert "<form" not in page.text


def test_get_with_a_forged_token_says_the_link_is_not_valid(web: Web) -> None:
    page = web.client.get("/u/abc.def")
    assert page.status_code == 404 and "This link is not valid" in page.text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_pages_send_no_referrer_and_load_nothing_from_elsewhere(
    web: Web, method: str
) -> None:
    path = subscriber(web)
    response = web.client.request(method, path)
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "http" not in csp
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "<script" not in html and "<link" not in html and " src=" not in html
    assert "https://" not in html and "http://" not in html.replace(web.url, "")


def test_the_links_in_a_sent_edition_work(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract with digest/send.py: its List-Unsubscribe and footer links hit this app."""
    monkeypatch.setenv("DIGEST_CONFIG", str(ROOT / "digest.toml"))
    monkeypatch.setenv("DIGEST_DATABASE__URL", f"sqlite:///{db_path}")
    monkeypatch.setenv("DIGEST_DELIVERY__OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    for step in (
        ["subscribers", "import", str(EXAMPLES / "subscribers.csv")],
        ["build", "--now", "2026-11-20T09:00"],
        ["edition", "approve", "1"],
        ["send", "--now", "2026-11-20T09:00"],
    ):
        monkeypatch.setattr(sys, "argv", ["digest", *step])
        with pytest.raises(SystemExit) as done:
            main()
        assert not done.value.code, step
    message = next(m for m in read_outbox(tmp_path / "outbox") if m["List-Unsubscribe"])
    header = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    manage = link(message, "/manage/")
    for key in [k for k in os.environ if k.startswith("DIGEST_")]:
        monkeypatch.delenv(key)
    web, live = start_web(tmp_path, db_path)
    try:
        path = urlsplit(header).path
        assert web.client.get(urlsplit(manage).path).status_code == 200
        assert web.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        with web.session() as session:
            sub = find_by_email(session, str(message["To"]))
            assert sub is not None and sub.status == UNSUBSCRIBED
    finally:
        live.stop()
        web.close()


def test_a_burst_is_committed_together_and_a_failure_answers_only_its_own_request(
    settings: Settings, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: one-click POSTs that arrive together share one transaction; if it fails,
    each request is retried alone, so only the failing one fails."""
    clock = Clock()
    app = create_app(settings, clock=clock)
    keys = settings.secret_keys()
    ids = {}
    with factory() as session, session.begin():
        for name in ("first", "bad", "last"):
            address = f"{name}@example.com"
            add_confirmed(
                session,
                address,
                evidence=Evidence("t"),
                now=clock(),
                keys=keys,
                policy=Policy(SECTIONS),
            )
            ids[name] = find_by_email(session, address).public_id  # type: ignore[union-attr]
    batches: list[list[str]] = []
    real = web_oneclick.unsubscribe_public_ids

    def flaky(connection: Any, requests: list[tuple[str, Evidence]], **kw: Any) -> list[bool]:
        batches.append([public_id for public_id, _ in requests])
        if ids["bad"] in batches[-1]:
            raise RuntimeError("disk I/O error")
        return real(connection, requests, **kw)

    monkeypatch.setattr(web_oneclick, "unsubscribe_public_ids", flaky)

    async def post(public_id: str) -> int | str:
        token = make_token(keys, UNSUBSCRIBE, public_id, clock())
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"List-Unsubscribe=One-Click"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/u/{token}",
            "headers": [(b"content-length", b"26")],
            "client": ("192.0.2.1", 1234),
        }
        try:
            await app(scope, receive, send)
        except RuntimeError as exc:
            return str(exc)
        return int(sent[0]["status"])

    async def burst() -> list[int | str]:
        return await asyncio.gather(*(post(ids[n]) for n in ("first", "bad", "last")))

    # The failed request gets a 500 (with the security headers: digest/web/security.py).
    assert asyncio.run(burst()) == [200, 500, 200]
    assert batches == [
        [ids["first"], ids["bad"], ids["last"]],
        [ids["first"]],
        [ids["bad"]],
        [ids["last"]],
    ]
    with factory() as session:
        states = {n: find_by_email(session, f"{n}@example.com").status for n in ids}  # type: ignore[union-attr]
    assert states == {"first": UNSUBSCRIBED, "bad": ACTIVE, "last": UNSUBSCRIBED}


def test_the_wal_checkpoint_thread_catches_up_then_stops_when_idle(db_path: Path) -> None:
    engine = make_engine(f"sqlite:///{db_path}")
    checkpoints = Checkpoints(engine, pause_s=0.01, idle_s=0.05)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA wal_autocheckpoint=0")
            with connection.begin():
                connection.exec_driver_sql("CREATE TABLE filler (x TEXT)")
                for _ in range(200):
                    connection.exec_driver_sql("INSERT INTO filler VALUES (?)", ("x" * 4000,))
            raw.execute("PRAGMA wal_autocheckpoint=1000")
        for _ in range(2):  # the thread ends when idle and starts again with the next write
            runs = checkpoints.done
            checkpoints.wrote()
            deadline = time.monotonic() + 10
            while (checkpoints.done == runs or checkpoints.running) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert checkpoints.done > runs and not checkpoints.running
        with engine.connect() as connection:
            busy, frames, copied = connection.exec_driver_sql(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).one()
        assert busy == 0 and frames == copied
    finally:
        engine.dispose()


def test_one_click_leaves_the_connections_autocheckpoint_as_it_was(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    """The one-click transaction hands its WAL checkpoint to the thread, but the pooled
    connection goes back with SQLite's usual setting for every other request."""
    clock = Clock()
    app = create_app(settings, clock=clock)
    engine = app.state.sessions.kw["bind"]
    returned: list[int] = []

    def checked_in(dbapi_connection: Any, _record: Any) -> None:
        (value,) = dbapi_connection.execute("PRAGMA wal_autocheckpoint").fetchone()
        returned.append(int(value))

    event.listen(engine, "checkin", checked_in)
    keys = settings.secret_keys()
    with factory() as session, session.begin():
        add_confirmed(
            session,
            "one@example.com",
            evidence=Evidence("t"),
            now=clock(),
            keys=keys,
            policy=Policy(SECTIONS),
        )
        public_id = find_by_email(session, "one@example.com").public_id  # type: ignore[union-attr]
    token = make_token(keys, UNSUBSCRIBE, public_id, clock())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": f"/u/{token}", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    assert returned and set(returned) == {1000}
    event.remove(engine, "checkin", checked_in)
