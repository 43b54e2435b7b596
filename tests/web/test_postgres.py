"""The same web flow on PostgreSQL: subscribe, confirm, choose sections, one-click unsubscribe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from digest.store.db import make_engine, upgrade
from subscribers.lifecycle import find_by_email, recipients_for
from subscribers.models import ACTIVE, UNSUBSCRIBED
from subscribers.tokens import UNSUBSCRIBE, make_token
from tests.subscribers_helpers import SECTIONS, Web, csrf_token, start_web

pytestmark = pytest.mark.postgres
# Unique per run: several worktrees' suites share the test server, and a schema one of them
# migrates with its own revisions is "outdated" for another.
SCHEMA = f"web_flow_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_web(postgres_url: str, tmp_path: Path) -> Iterator[Web]:
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    url = f"{postgres_url}?options=-csearch_path%3D{SCHEMA}"
    engine = make_engine(url)
    upgrade(engine)  # a server database is migrated explicitly, never by the app
    engine.dispose()
    web, live = start_web(tmp_path, tmp_path / "unused.db", database={"url": url})
    try:
        yield web
    finally:
        live.stop()
        web.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        admin.dispose()


def test_subscribe_confirm_prefer_and_leave_on_postgresql(pg_web: Web) -> None:
    web = pg_web
    done = web.confirm("pg.reader@example.com")
    assert "You are subscribed" in done.text
    start = done.text.index('href="') + len('href="')
    manage = web.path(done.text[start : done.text.index('"', start)])
    token = csrf_token(web.client.get(manage).text)
    web.client.post(manage, data={"sections": ["Asia"], "csrf_token": token})
    with web.session() as session:
        sub = find_by_email(session, "pg.reader@example.com")
        assert sub is not None and sub.status == ACTIVE and sub.sections == ["Asia"]
        assert [a.sections for a in recipients_for(session, SECTIONS, web.clock())] == [("Asia",)]
        public_id = sub.public_id
    path = f"/u/{make_token(web.keys, UNSUBSCRIBE, public_id, web.clock())}"
    for _ in range(2):
        response = web.client.post(path, content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 200
    with web.session() as session:
        sub = find_by_email(session, "pg.reader@example.com")
        assert sub is not None and sub.status == UNSUBSCRIBED
        assert [c.event for c in sub.consents] == [
            "subscribe",
            "confirm",
            "preferences",
            "unsubscribe",
        ]


def test_the_json_api_and_the_rate_limit_on_postgresql(pg_web: Web) -> None:
    web = pg_web
    first = web.client.post("/api/subscribe", json={"email": "pg.json@example.com"})
    second = web.client.post("/api/subscribe", json={"email": "pg.json@example.com"})
    assert first.status_code == second.status_code == 202
    assert len(web.messages()) == 1  # one confirmation per address per interval
