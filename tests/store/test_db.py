"""Migrations: the Alembic history produces exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import digest.store.models  # noqa: F401  (registers the tables)
from digest.store.db import current_heads, is_up_to_date, make_engine, open_database, upgrade
from subscribers.models import Base


def test_migrations_match_the_models(template_db: Path) -> None:
    engine = make_engine(f"sqlite:///{template_db}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    heads = current_heads(engine)
    upgrade(engine)
    assert current_heads(engine) == heads
    assert is_up_to_date(engine)


def test_embedded_sqlite_is_migrated_on_first_use(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert is_up_to_date(engine)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
