"""How fast a worker may hand messages to its backend: per second, per hour, and a warm-up ramp.

Each limit is a sliding window: at most `limit` messages in any `period` seconds, kept as a
short log of (time, count) per batch. A batch that does not fit waits until enough of the log
has aged out. Exact, and cheap at batch granularity. The clock and sleep are injected, so
tests never wait.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from digest.config import DeliverySettings

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass
class Rate:
    """At most `limit` messages in any window of `period` seconds."""

    limit: int
    period: float
    _log: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @classmethod
    def per_second(cls, rate: float) -> Rate:
        # A fractional rate (0.5/s) becomes one message per 1/rate seconds.
        return cls(int(rate), 1.0) if rate >= 1 else cls(1, 1.0 / rate)

    def earliest(self, n: int, at: float, now: float) -> float:
        """The first moment from `at` on when `n` more messages fit in the window. Every
        booking so far is at `at` or before (Throttle books in order); those older than a
        window before `now` are forgotten (never those of a window ahead: another sender's
        booking may still be waiting for its moment)."""
        n = min(n, self.limit)  # callers cap batches at the limit; never wait forever
        self._log = [(t, k) for t, k in self._log if t > now - self.period]
        seen = [(t, k) for t, k in self._log if t > at - self.period]
        used = sum(k for _, k in seen)
        if used + n <= self.limit:
            return at
        need, freed = used + n - self.limit, 0
        for t, k in seen:
            freed += k
            if freed >= need:
                return max(at, t + self.period)
        return at  # unreachable: the whole window frees enough

    def book(self, n: int, at: float) -> None:
        bisect.insort(self._log, (at, min(n, self.limit)))


class Throttle:
    """Every limit a backend has; `acquire(n)` sleeps until `n` messages may be sent."""

    def __init__(
        self,
        rates: list[Rate],
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.rates = rates
        self.clock = clock
        self.sleep = sleep
        self.paused_until = 0.0
        # Sender threads book their batches one at a time (each then sleeps on its own).
        self._lock = threading.Lock()
        self._last = 0.0  # the latest moment booked

    @classmethod
    def from_settings(
        cls, delivery: DeliverySettings, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> Throttle:
        rates = []
        if delivery.rate_per_second:
            rates.append(Rate.per_second(delivery.rate_per_second))
        if delivery.rate_per_hour:
            rates.append(Rate(delivery.rate_per_hour, 3600.0))
        return cls(rates, clock, sleep)

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` (the provider said 429, or is failing)."""
        with self._lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def acquire(self, n: int) -> float:
        """Block until `n` messages may go; returns the seconds slept. Called by every sender
        thread: each books its moment under the lock, so the windows hold across them."""
        with self._lock:
            now = self.clock()
            # Never before the last booking: senders go in the order they asked.
            start = max(self.paused_until, now, self._last)
            for _ in range(len(self.rates) + 1):  # until every limit agrees on one moment
                later = max([start, *(r.earliest(n, start, now) for r in self.rates)])
                if later == start:
                    break
                start = later
            for rate in self.rates:
                rate.book(n, start)
            if self.rates:
                self._last = start
        if start > now:
            self.sleep(start - now)
        return start - now


def warmup_cap(delivery: DeliverySettings, today: date) -> int | None:
    """Most messages allowed on `today` by the warm-up ramp; None when there is no cap."""
    if delivery.warmup_start is None or not delivery.warmup_daily:
        return None
    day = (today - delivery.warmup_start).days
    if day < 0:
        return delivery.warmup_daily[0]
    if day >= len(delivery.warmup_daily):
        return None
    return delivery.warmup_daily[day]


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: warm-up days are UTC days."""
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def next_day(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)
