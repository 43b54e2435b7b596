"""How fast a worker may hand messages to its backend: per second, per hour, and a warm-up ramp.

Rates are enforced with GCRA (the "virtual scheduling" form of a token bucket): each message
pushes a theoretical arrival time forward by 1/rate; a sender waits when that time is further
ahead than the allowed burst. It needs two numbers per limit and no timer. The clock and sleep
are injected, so tests never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from digest.config import DeliverySettings

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass
class Rate:
    """At most `per_period` messages per `period` seconds, with bursts up to `burst` seconds."""

    per_period: float
    period: float
    burst: float
    _tat: float | None = field(default=None, repr=False)  # theoretical arrival time

    def wait_for(self, n: int, now: float) -> float:
        """Seconds to wait before `n` more messages may go (0: now); books them."""
        interval = self.period / self.per_period
        tat = now if self._tat is None else max(self._tat, now)
        start = max(now, tat - self.burst)
        self._tat = max(tat, start) + n * interval
        return start - now


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

    @classmethod
    def from_settings(
        cls, delivery: DeliverySettings, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> Throttle:
        rates = []
        if delivery.rate_per_second:
            rates.append(Rate(delivery.rate_per_second, 1.0, burst=1.0))
        if delivery.rate_per_hour:
            # The whole hour's allowance may go at once, then it refills at per_hour / 3600 s.
            rates.append(Rate(float(delivery.rate_per_hour), 3600.0, burst=3600.0))
        return cls(rates, clock, sleep)

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` (the provider said 429, or is failing)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def acquire(self, n: int) -> float:
        """Block until `n` messages may go; returns the seconds slept."""
        now = self.clock()
        wait = max(self.paused_until - now, 0.0)
        for rate in self.rates:
            wait = max(wait, rate.wait_for(n, now + wait))
        if wait > 0:
            self.sleep(wait)
        return wait


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
