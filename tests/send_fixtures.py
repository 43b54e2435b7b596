"""Fixtures for the delivery tests, imported by the modules that use them.

`ledger_db` runs a test on SQLite and on PostgreSQL (a schema of its own per test module,
emptied between tests); the PostgreSQL half skips (or fails under CI=true) without a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.store.db import session_factory
from subscribers.models import Base
from tests.send_helpers import make_edition, postgres_schema


@dataclass
class LedgerDb:
    name: str
    engine: Engine
    factory: sessionmaker[Session]
    settings: Settings


@pytest.fixture(scope="module")
def _pg_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url")
    with postgres_schema(url) as engine:
        yield engine


def _empty(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_db(request: pytest.FixtureRequest, settings: Settings) -> Iterator[LedgerDb]:
    if request.param == "sqlite":
        engine = request.getfixturevalue("engine")
        yield LedgerDb("sqlite", engine, session_factory(engine), settings)
        return
    engine = request.getfixturevalue("_pg_engine")
    _empty(engine)
    yield LedgerDb("postgres", engine, session_factory(engine), settings)


@pytest.fixture
def edition_id(ledger_db: LedgerDb, now: datetime) -> int:
    return make_edition(ledger_db.factory, now)
