"""What the send engine takes from the world, injectable: the clock, sleeping, randomness, a
stop request; the crash tests' seam; and how a worker's threads share the database."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.store.db import bulk_transaction, checkpoints


def _now() -> datetime:
    return datetime.now(UTC)


def _never() -> bool:
    return False


@dataclass
class Runtime:
    """Tests pass a hand-cranked clock whose sleep advances it, and a seeded random source."""

    clock: Callable[[], datetime] = _now
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    # Asked before each batch: true asks the worker to stop (SIGTERM in `digest worker`).
    should_stop: Callable[[], bool] = _never


def checkpoint(point: str) -> None:
    """A seam for the crash tests: tests/crash_runner.py replaces it to SIGKILL the process at
    a named point (planned, claimed, submitted, recorded). Does nothing otherwise."""


# The held connection's page cache (negative: KiB). A batch of one variant among 31 is every
# 31st ledger row of a stretch (and its subscribers, when a claim must look at them), and the
# batches of the other variants claimed next read those same pages: 16 MB keeps a round of them.
CLAIM_CACHE_KIB = -16384


class Writes:
    """Transactions of one worker's threads, one at a time on SQLite.

    SQLite has one writer; when two threads of a worker collide, the loser polls with sleeps of
    1 ms and up (SQLite's busy handler). A Python lock hands over at once. PostgreSQL locks
    rows, so its transactions run side by side.

    On SQLite the transactions share one connection, held from the first until `close`, with
    its WAL left to the checkpoint thread (store.db.bulk_transaction's reasons): a send makes
    three small transactions per batch, and taking a connection from the pool and setting it
    up for each cost ten times the UPDATE it ran.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        bind = factory.kw.get("bind")
        self._engine = bind if isinstance(bind, Engine) and bind.dialect.name == "sqlite" else None
        serial = self._engine is not None
        self._lock: AbstractContextManager[object] = threading.Lock() if serial else nullcontext()
        self._held: Connection | None = None
        self._reused: Session | None = None
        self._autocheckpoint = self._cache = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self._engine is None:
            with bulk_transaction(self.factory) as session:
                yield session
            return
        with self._lock:
            session = self._session()
            try:
                with session.begin():
                    yield session
            finally:
                session.expunge_all()  # nothing read in one transaction is kept for the next
            checkpoints(self._engine).wrote()

    def _session(self) -> Session:
        """The session on the held connection (both made at the first transaction, and again
        after the connection was lost)."""
        held = self._held
        if held is None or held.invalidated or held.closed or self._reused is None:
            assert self._engine is not None
            held = self._held = self._engine.connect()
            raw = held.connection.dbapi_connection
            assert raw is not None
            (self._autocheckpoint,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
            (self._cache,) = raw.execute("PRAGMA cache_size").fetchone()
            raw.execute("PRAGMA wal_autocheckpoint=0")
            raw.execute(f"PRAGMA cache_size={CLAIM_CACHE_KIB}")
            self._reused = self.factory(bind=held)
        return self._reused

    def close(self) -> None:
        """Give the held connection back to the pool, as it was."""
        with self._lock:
            held, self._held = self._held, None
            if self._reused is not None:
                self._reused.close()
                self._reused = None
            if held is None or held.closed:
                return
            try:
                if not held.invalidated:
                    raw = held.connection.dbapi_connection
                    assert raw is not None
                    raw.execute(f"PRAGMA wal_autocheckpoint={int(self._autocheckpoint)}")
                    raw.execute(f"PRAGMA cache_size={int(self._cache)}")
            finally:
                held.close()
