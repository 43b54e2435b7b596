"""Migrations 0004_delivery and 0006_send_batches produce exactly what the models say, on SQLite
and PostgreSQL; the rows of a send made before 0006 keep their states and can be resumed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import digest.store.models  # noqa: F401  (registers the tables)
from subscribers.models import Base

MINE = {"edition_sends", "send_workers", "link_clicks", "webhook_events", "send_batches"}
WORDS = ("worker_id", "batch_id", "ix_deliveries", "status", "batches")


def _mentions_mine(diff: Any) -> bool:
    text = repr(diff)
    return any(name in text for name in MINE) or any(word in text for word in WORDS)


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    return [d for d in flat if _mentions_mine(d)]


def _check(engine: Engine) -> None:
    assert _differences(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert tables >= MINE
    indexes = {i["name"] for i in inspect(engine).get_indexes("deliveries")}
    assert {i for i in indexes if i.startswith("ix_")} == {
        "ix_deliveries_batch",
        "ix_deliveries_override",
    }


def test_sqlite_schema_matches_the_models(engine: Engine) -> None:
    _check(engine)


@pytest.mark.postgres
def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    from tests.send_helpers import postgres_schema

    with postgres_schema(postgres_url) as engine:
        _check(engine)


def test_downgrade_removes_only_what_it_added(tmp_path) -> None:
    from alembic import command

    from digest.store.db import alembic_config, make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0004_delivery")  # undo the merge revision
    command.downgrade(alembic_config(engine), "0004_delivery@-1")
    tables = set(inspect(engine).get_table_names())
    assert not tables & MINE and "deliveries" in tables
    columns = {c["name"] for c in inspect(engine).get_columns("deliveries")}
    assert "worker_id" not in columns
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= MINE
    engine.dispose()


def test_downgrading_0006_writes_every_rows_state_out(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from digest.send.engine import begin
    from digest.store.db import alembic_config, make_engine, session_factory, upgrade
    from tests.send_helpers import add_subscribers, make_edition

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    factory = session_factory(engine)
    now = datetime(2026, 11, 20, 14, tzinfo=UTC)
    make_edition(factory, now)
    add_subscribers(factory, 3, now)
    begin(factory, 1, now, batch_size=2)
    command.downgrade(alembic_config(engine), "0005_merge")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, batch_id FROM deliveries ORDER BY id")).all()
    assert [(i, s) for i, s, _ in rows] == [(1, "planned"), (2, "planned"), (3, "planned")]
    assert {b for _, _, b in rows} == {"1-0", "1-1"}
    upgrade(engine)
    engine.dispose()


def test_a_send_interrupted_by_the_upgrade_resumes(tmp_path, settings) -> None:
    """Rows written before 0006 keep their states (and no batch): a resume releases the
    claimed ones, and claims gather them into batches."""
    from collections import Counter

    from alembic import command
    from sqlalchemy import text

    from digest.backends.memory import MemoryBackend
    from digest.ledger import tally
    from digest.send.engine import send_edition
    from digest.store.db import alembic_config, make_engine, session_factory
    from tests.send_helpers import add_subscribers, with_values

    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    command.upgrade(alembic_config(engine), "0005_merge")
    factory = session_factory(engine)
    now = datetime(2026, 11, 20, 14, tzinfo=UTC)
    stamp = now.replace(tzinfo=None).isoformat(" ")
    _old_edition(engine, stamp)
    add_subscribers(factory, 6, now)
    old = ["accepted", "accepted", "claimed", "submitted", "planned", "planned"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO edition_sends (edition_id, state, planned, started_at, updated_at,"
                " opens, machine_opens, clicks) VALUES (1, 'sending', 6, :t, :t, 0, 0, 0)"
            ),
            {"t": stamp},
        )
        conn.execute(text("UPDATE editions SET status = 'sending'"))
        for i, status in enumerate(old, 1):
            conn.execute(
                text(
                    "INSERT INTO deliveries (edition_id, subscriber_id, email, variant, status,"
                    " batch_id, attempts, created_at, updated_at, worker_id, public_id)"
                    " SELECT 1, id, email, '', :status, 'old-batch', 0, :t, :t, 99, public_id"
                    " FROM subscribers WHERE id = :i"
                ),
                {"status": status, "t": stamp, "i": i},
            )
    command.upgrade(alembic_config(engine), "heads")
    with factory() as session:
        assert tally.counts(session, 1) == Counter(old)
    backend = MemoryBackend()
    report = send_edition(
        factory,
        with_values(
            settings, database=settings.database.model_copy(update={"url": f"sqlite:///{path}"})
        ),
        backend,
        edition_id=1,
        now=now,
        resume_send=True,
        resend_uncertain=True,
    )
    assert sorted(backend.sent_to) == [f"user{i}@example.com" for i in (2, 3, 4, 5)]
    assert report.released == 1 and report.resent == 1 and report.finished
    with factory() as session:
        assert tally.counts(session, 1) == Counter({"accepted": 6})
    engine.dispose()


def _old_edition(engine: Engine, stamp: str) -> None:
    """An edition with one article per section, written with 0005's columns (the models'
    columns of today are not there yet)."""
    from sqlalchemy import text

    from tests.send_helpers import SECTIONS

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO editions (id, status, window_start, cutoff, subject, intro,"
                " created_at) VALUES (1, 'draft', :t, :t, 'The Weekly Round-up', '', :t)"
            ),
            {"t": stamp},
        )
        for n, section in enumerate(SECTIONS, 1):
            url = f"https://news.example/old-{n}"
            conn.execute(
                text(
                    "INSERT INTO articles (id, url, title, summary, section, published_at,"
                    " first_seen_at, updated_at, content_hash, is_pick) VALUES"
                    " (:n, :url, :title, '', :section, :t, :t, :t, 'x', 0)"
                ),
                {"n": n, "url": url, "title": f"{section} story", "section": section, "t": stamp},
            )
            conn.execute(
                text(
                    "INSERT INTO edition_items (edition_id, article_id, position, section, title,"
                    " url, summary, score, reasons, pinned) VALUES"
                    " (1, :n, :n, :section, :title, :url, '', 1.0, '[]', 0)"
                ),
                {"n": n, "url": url, "title": f"{section} story", "section": section},
            )
