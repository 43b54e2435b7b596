"""What the send engine takes from the world, injectable: the clock, sleeping, randomness, a
stop request; and the crash tests' seam."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


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
