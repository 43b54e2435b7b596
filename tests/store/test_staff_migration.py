"""Migration 0010_staff creates exactly what the models say for the staff tables and the shared
rate limits, on SQLite and PostgreSQL, and downgrades to 0007 and upgrades again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Index, Table, inspect

import digest.store.models  # noqa: F401  (registers the tables)
from digest.store.db import alembic_config, make_engine, upgrade
from subscribers.models import Base
from tests.send_helpers import postgres_schema

MINE = {"staff", "staff_tokens", "staff_sessions", "rate_limits"}
BEFORE = "0007_edition_lifecycle"


def _table_of(diff: Any) -> str | None:
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


def test_the_filter_sees_the_missing_tables_before_the_migration(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), BEFORE)
    assert {_table_of(d) for d in _differences(engine)} == MINE
    engine.dispose()


def test_sqlite_schema_matches_the_models(engine: Engine) -> None:
    assert _differences(engine) == []


@pytest.mark.postgres
def test_postgres_schema_matches_the_models_and_downgrades(postgres_url: str) -> None:
    with postgres_schema(postgres_url) as engine:
        assert _differences(engine) == []
        command.downgrade(alembic_config(engine), BEFORE)
        assert not set(inspect(engine).get_table_names()) & MINE
        upgrade(engine)
        assert _differences(engine) == []
