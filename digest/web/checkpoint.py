"""SQLite WAL checkpoints off the request path, while the web app runs.

SQLite copies the write-ahead log back into the database file (a checkpoint) inside whichever
commit pushes the log past 1,000 pages. Under a stream of one-click unsubscribes that is one
request in ~250 paying several milliseconds, and every request queued behind it on the event
loop waiting too: the p99. While the app runs, its connections skip automatic checkpoints and
a thread runs PASSIVE ones every second (they never block a writer; SQLite releases the GIL
while it copies). Outside the app's lifespan nothing changes: SQLite checkpoints as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, event

log = logging.getLogger(__name__)
INTERVAL_S = 1.0


class Checkpointer:
    def __init__(self, engine: Engine, interval_s: float = INTERVAL_S) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        event.listen(self.engine, "connect", _no_auto_checkpoint)
        self.engine.dispose()  # pooled connections were opened with automatic checkpoints
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        event.remove(self.engine, "connect", _no_auto_checkpoint)
        self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # a missed checkpoint only means a longer log until the next one
            log.exception("SQLite checkpoint failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.checkpoint()


def _no_auto_checkpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def lifespan_for(engine: Engine) -> Any:
    """A FastAPI lifespan running a Checkpointer for a SQLite engine (nothing otherwise)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if engine.dialect.name != "sqlite":
            yield
            return
        checkpointer = Checkpointer(engine)
        checkpointer.start()
        try:
            yield
        finally:
            checkpointer.stop()

    return lifespan
