"""Migration 0007_edition_lifecycle produces exactly what the models say for editions,
edition_edits and edition_events, on SQLite and PostgreSQL; upgrading a database that holds a
sent edition keeps every item and delivery (a SQLite table copy of `editions` would delete
them: dropping the old table cascades with foreign keys on); it downgrades and upgrades again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Index, Table, inspect, text

import digest.store.models  # noqa: F401  (registers the tables)
from digest.store.db import alembic_config, make_engine, session_factory, upgrade
from subscribers.models import Base
from tests.send_helpers import SECTIONS, add_subscribers, postgres_schema

MINE = {"editions", "edition_edits", "edition_events"}
BEFORE = "0006_send_batches"
NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)


def _table_of(diff: Any) -> str | None:
    """The table an autogenerate difference is about (add_table, add_index, add_column,
    modify_type ... each carry it in their own place)."""
    for part in diff[1:]:
        if isinstance(part, Table):
            return part.name
        if isinstance(part, Index) and part.table is not None:
            return part.table.name
    if len(diff) > 2 and isinstance(diff[2], str):
        return diff[2]
    return None


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    return [d for d in flat if _table_of(d) in MINE]


def _check(engine: Engine) -> None:
    assert _differences(engine) == []
    found = inspect(engine)
    assert set(found.get_table_names()) >= MINE
    cutoff = next(i for i in found.get_indexes("editions") if i["name"] == "ix_editions_cutoff")
    assert cutoff["unique"] and cutoff["column_names"] == ["cutoff"]
    columns = {c["name"] for c in found.get_columns("editions")}
    assert columns >= {"preheader", "built_at", "approved_by", "content_hash", "version"}


def test_the_filter_sees_a_difference_in_these_tables(tmp_path: Path) -> None:
    """The check below is not vacuous: at 0006 the three tables differ from the models."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), BEFORE)
    tables = {_table_of(d) for d in _differences(engine)}
    engine.dispose()
    assert tables == MINE


def test_sqlite_schema_matches_the_models(engine: Engine) -> None:
    _check(engine)


@pytest.mark.postgres
def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    with postgres_schema(postgres_url) as engine:
        _check(engine)


@pytest.mark.postgres
def test_postgres_downgrades_to_0006_and_upgrades_again(postgres_url: str) -> None:
    with postgres_schema(postgres_url) as engine:
        command.downgrade(alembic_config(engine), BEFORE)
        assert not set(inspect(engine).get_table_names()) & {"edition_edits", "edition_events"}
        upgrade(engine)
        _check(engine)


@pytest.fixture
def old_db(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database at 0006 holding a sent edition (one article per section, an item for
    each, a delivery to each of three subscribers) and a draft of the week after with the same
    articles and no deliveries (foreign keys on, as always)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), BEFORE)
    stamp = NOW.replace(tzinfo=None).isoformat(" ")
    add_subscribers(session_factory(engine), 3, NOW)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        conn.execute(
            text(
                "INSERT INTO editions (id, status, window_start, cutoff, subject, intro,"
                " created_at, approved_at, send_started_at, sent_at) VALUES (1, 'sent', :w, :t,"
                " 'The Weekly Round-up', 'Five desks', :t, :t, :t, :t)"
            ),
            {"t": stamp, "w": "2026-11-13 14:00:00"},
        )
        # A draft of the next week, with items and no deliveries: nothing would stop a cascade.
        conn.execute(
            text(
                "INSERT INTO editions (id, status, window_start, cutoff, subject, intro,"
                " created_at) VALUES (2, 'draft', :t, '2026-11-27 14:00:00',"
                " 'The Weekly Round-up', 'Five desks', :t)"
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
            for edition_id in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO edition_items (edition_id, article_id, position, section,"
                        " title, url, summary, score, reasons, pinned) VALUES"
                        " (:e, :n, :n, :section, :title, :url, '', 1.0, '[\"recent\"]', 0)"
                    ),
                    {
                        "e": edition_id,
                        "n": n,
                        "url": url,
                        "title": f"{section} story",
                        "section": section,
                    },
                )
        conn.execute(
            text(
                "INSERT INTO deliveries (edition_id, subscriber_id, email, variant, status,"
                " attempts, created_at, updated_at, public_id, provider_message_id)"
                " SELECT 1, id, email, '', 'accepted', 1, :t, :t, public_id, 'm-' || id"
                " FROM subscribers"
            ),
            {"t": stamp},
        )
    yield engine
    engine.dispose()


def _contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            "editions": [
                tuple(r)
                for r in conn.execute(text("SELECT id, status, subject, intro FROM editions"))
            ],
            "items": [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT edition_id, article_id, position, section, reasons"
                        " FROM edition_items ORDER BY id"
                    )
                )
            ],
            "deliveries": [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT edition_id, email, status, provider_message_id"
                        " FROM deliveries ORDER BY id"
                    )
                )
            ],
        }


def test_upgrading_keeps_every_item_and_delivery_of_an_edition(old_db: Engine) -> None:
    before = _contents(old_db)
    assert len(before["items"]) == 2 * len(SECTIONS) and len(before["deliveries"]) == 3
    upgrade(old_db)
    assert _contents(old_db) == before
    _check(old_db)
    with old_db.connect() as conn:
        rows = conn.execute(
            text("SELECT preheader, version, content_hash, status_reason FROM editions")
        ).all()
    assert [tuple(r) for r in rows] == [("", 1, None, None)] * 2


def test_the_upgraded_edition_reads_back_through_the_models(old_db: Engine) -> None:
    from digest.edition.queries import get_edition

    upgrade(old_db)
    with session_factory(old_db)() as session:
        for edition_id, status in ((1, "sent"), (2, "draft")):
            edition = get_edition(session, edition_id)
            assert edition.status == status and edition.history == [] and edition.edits == []
            assert [i.section for i in edition.items] == list(SECTIONS)


def test_downgrade_to_0006_and_upgrade_again_keeps_the_edition(old_db: Engine) -> None:
    before = _contents(old_db)
    upgrade(old_db)
    with old_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO edition_events (edition_id, at, actor, action, from_status,"
                " to_status, forced) VALUES (1, :t, 'ann', 'sent', 'sending', 'sent', 0)"
            ),
            {"t": NOW.replace(tzinfo=None).isoformat(" ")},
        )
    command.downgrade(alembic_config(old_db), BEFORE)
    found = inspect(old_db)
    assert not set(found.get_table_names()) & {"edition_edits", "edition_events"}
    assert "version" not in {c["name"] for c in found.get_columns("editions")}
    assert _contents(old_db) == before
    upgrade(old_db)
    assert _contents(old_db) == before
    _check(old_db)
