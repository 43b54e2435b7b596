"""Migration 0011_hardening: the subscribers table gains the open request's name and sections,
copied from the row for requests already open (so that confirming one gives what it asked
for), on SQLite and PostgreSQL; it downgrades and upgrades again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from digest.store.db import alembic_config, make_engine, upgrade
from tests.send_helpers import postgres_schema

BEFORE = "0010_staff"
STAMP = datetime(2026, 11, 20, 14, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")


def _add(engine: Engine, email: str, status: str, nonce: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (public_id, email, name, status, sections, created_at,"
                " updated_at, confirm_nonce) VALUES (:p, :e, 'Jane', :s, '[\"Asia\"]', :t, :t, :n)"
            ),
            {"p": email[:32].ljust(32, "0"), "e": email, "s": status, "t": STAMP, "n": nonce},
        )


def _check(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), BEFORE)
    columns = {c["name"] for c in inspect(engine).get_columns("subscribers")}
    assert not columns & {"requested_name", "requested_sections"}
    _add(engine, "open@example.com", "pending", "abcdef0123456789")
    _add(engine, "done@example.com", "active", None)
    upgrade(engine)
    with engine.connect() as conn:
        rows = dict(
            conn.execute(text("SELECT email, requested_name FROM subscribers ORDER BY email")).all()
        )
        sections = conn.scalar(
            text("SELECT requested_sections FROM subscribers WHERE email = 'open@example.com'")
        )
    assert rows == {"done@example.com": None, "open@example.com": "Jane"}
    assert (sections if isinstance(sections, list) else json.loads(sections)) == ["Asia"]


def test_sqlite_upgrade_copies_open_requests(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine)
    try:
        _check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_copies_open_requests(postgres_url: str) -> None:
    with postgres_schema(postgres_url) as engine:
        _check(engine)
