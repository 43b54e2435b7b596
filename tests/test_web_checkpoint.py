"""While the web app runs on SQLite, WAL checkpoints happen in a thread, not in requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from digest.db import make_engine, upgrade
from digest.web.checkpoint import Checkpointer, lifespan_for


def auto_checkpoint(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_connections_skip_automatic_checkpoints_while_it_runs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    checkpointer = Checkpointer(engine, interval_s=3600)
    checkpointer.start()
    try:
        assert auto_checkpoint(engine) == 0
    finally:
        checkpointer.stop()
    engine.dispose()
    assert auto_checkpoint(engine) == 1000
    engine.dispose()


def test_the_thread_copies_the_log_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    checkpointer = Checkpointer(engine, interval_s=0.01)
    checkpointer.start()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES ('" + "x" * 100_000 + "')")
        checkpointer.checkpoint()
        with engine.connect() as connection:
            busy, log, done = connection.exec_driver_sql("PRAGMA wal_checkpoint").one()
        assert busy == 0 and done == log
    finally:
        checkpointer.stop()
        engine.dispose()


def test_the_lifespan_starts_and_stops_it_for_sqlite_only(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)

    async def run() -> int:
        async with lifespan_for(engine)(FastAPI()):
            return auto_checkpoint(engine)

    assert asyncio.run(run()) == 0
    engine.dispose()
    assert auto_checkpoint(engine) == 1000
    engine.dispose()
