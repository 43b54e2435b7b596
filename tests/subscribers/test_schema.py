"""The subscriber tables: migration 0003 builds exactly what the models say, and the
subscribers package stays below digest (it imports nothing from it)."""

from __future__ import annotations

import ast
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import digest.store.models  # noqa: F401  (registers every table on the shared metadata)
from digest.store.db import make_engine, upgrade
from subscribers.models import Base
from tests.conftest import ROOT

MINE = {"subscribers", "consents", "suppressions", "consent_texts", "confirmation_sends"}


def _touches_mine(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{table}'" in text or f"table {table}" in text for table in MINE)


def test_a_fresh_upgrade_matches_the_subscriber_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert tables >= MINE
    assert [d for d in diff if _touches_mine(d)] == []


def test_the_subscribers_package_imports_nothing_from_digest() -> None:
    offenders = []
    for path in sorted((ROOT / "subscribers").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n == "digest" or n.startswith("digest.")
            ]
    assert offenders == []
