"""Group commit on SQLite: writes that arrive together share one transaction and its commit.

A transaction with its commit costs more than the statements of one small write (a one-click
unsubscribe is three Core statements), and an event loop would otherwise run one transaction per
request. `GroupCommit` queues what arrives in one turn of the loop and commits it together one
turn later; each caller still waits for the commit that carries its write. If the shared
transaction fails, each write is retried on its own, so one bad write fails only its own caller.

WAL checkpoints, which copy the WAL into the database file with two fsyncs, are left to a thread
of their own (`Checkpoints`) instead of running inside those commits: the whole event loop would
otherwise wait for the disk every ~10 bursts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
Write = Callable[[Connection, list[T]], None]
log = logging.getLogger(__name__)


class GroupCommit(Generic[T]):
    """Commits the writes submitted in one turn of the event loop in one transaction."""

    def __init__(
        self, engine: Engine, write: Write[T], lock: AbstractContextManager[object]
    ) -> None:
        self._engine = engine
        self._write = write
        self._lock = lock
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self.checkpoints = Checkpoints(engine)

    async def submit(self, item: T) -> None:
        """Return once the transaction that carries `item` has committed (or raise its error).
        The transaction runs one turn later (call_soon), once every request read by now has
        queued."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._commit_waiting)
        self._waiting.append((item, committed))
        await committed

    def _commit_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            self._commit([item for item, _ in batch])
        except Exception:
            # The shared transaction was rolled back: each write on its own, so that one
            # write's failure is its caller's answer only.
            for item, committed in batch:
                try:
                    self._commit([item])
                except Exception as exc:
                    _settle(committed, exc)
                else:
                    _settle(committed, None)
            return
        for _, committed in batch:
            _settle(committed, None)

    def _commit(self, items: list[T]) -> None:
        """One transaction on the event loop. Its commit leaves the WAL to the checkpoint
        thread: SQLite would otherwise checkpoint inside every commit that finds the WAL over
        1,000 pages."""
        with self._lock, self._engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            (usual,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
            raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with connection.begin():
                    self._write(connection, items)
            finally:
                raw.execute(f"PRAGMA wal_autocheckpoint={int(usual)}")
        self.checkpoints.wrote()


class Checkpoints:
    """Copies the SQLite WAL into the database file (a PASSIVE checkpoint, which never blocks
    a writer) in a thread of its own, at most every `pause_s` while writes go on. The thread
    starts with the first write and ends after `idle_s` without one."""

    def __init__(self, engine: Engine, *, pause_s: float = 0.05, idle_s: float = 5.0) -> None:
        self.engine = engine
        self.pause_s = pause_s
        self.idle_s = idle_s
        self.done = 0  # checkpoints run
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def wrote(self) -> None:
        self._wake.set()
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="digest-wal-checkpoints", daemon=True).start()

    def _run(self) -> None:
        while True:
            while self._wake.wait(self.idle_s):
                self._wake.clear()
                self.checkpoint()
                time.sleep(self.pause_s)
            with self._lock:
                if not self._wake.is_set():
                    self._running = False
                    return

    def checkpoint(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one, or SQLite's own at the last close, catches up
            log.warning("WAL checkpoint failed", exc_info=True)
        self.done += 1


def _settle(committed: asyncio.Future[None], error: Exception | None) -> None:
    if committed.done():  # its request was cancelled meanwhile
        return
    if error is None:
        committed.set_result(None)
    else:
        committed.set_exception(error)
