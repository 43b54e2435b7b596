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

from sqlalchemy.orm import Session, sessionmaker

from digest.store.db import bulk_transaction


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


class Writes:
    """Transactions of one worker's two threads, one at a time on SQLite.

    SQLite has one writer; when two threads of a worker collide, the loser polls with sleeps of
    1 ms and up (SQLite's busy handler). A Python lock hands over at once. PostgreSQL locks
    rows, so its transactions run side by side.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        bind = factory.kw.get("bind")
        serial = bind is not None and bind.dialect.name == "sqlite"
        self._lock: AbstractContextManager[object] = threading.Lock() if serial else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._lock, bulk_transaction(self.factory) as session:
            yield session
