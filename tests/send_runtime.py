"""A frozen, hand-cranked clock for the send engine: sleeping advances it instead of waiting."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from digest.send.worker import Runtime


class FakeTime:
    def __init__(self, now: datetime, seed: int = 7) -> None:
        self.now = now
        self.mono = 1000.0
        self.slept: list[float] = []
        self.seed = seed

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds
        self.now += timedelta(seconds=seconds)

    def runtime(self) -> Runtime:
        return Runtime(
            clock=self.clock,
            sleep=self.sleep,
            monotonic=self.monotonic,
            rng=random.Random(self.seed),
        )
