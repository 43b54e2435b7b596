"""Migration 0004_delivery produces exactly what the models say, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import digest.models  # noqa: F401  (registers the tables)
from subscribers.models import Base

MINE = {"edition_sends", "send_workers", "link_clicks", "webhook_events"}


def _mentions_mine(diff: Any) -> bool:
    text = repr(diff)
    return (
        any(name in text for name in MINE) or "worker_id" in text or "ix_deliveries_queue" in text
    )


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
    assert "ix_deliveries_queue" in indexes


def test_sqlite_schema_matches_the_models(engine: Engine) -> None:
    _check(engine)


@pytest.mark.postgres
def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    from tests.send_helpers import postgres_schema

    with postgres_schema(postgres_url) as engine:
        _check(engine)


def test_downgrade_removes_only_what_it_added(tmp_path) -> None:
    from alembic import command

    from digest.db import alembic_config, make_engine, upgrade

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
