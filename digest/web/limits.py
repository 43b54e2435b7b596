"""Per-IP request limits for the subscribe and resend endpoints, in this process's memory.

They stop one client from hammering the forms; they are per process on purpose (cheap, no
database write per request). The limits that protect a victim's mailbox, one confirmation per
address per interval and a daily cap, are in the database (subscribers/ratelimit.py) and hold
across every process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta

# Enough distinct clients for a busy day; the least recently seen are forgotten beyond it.
MAX_TRACKED = 100_000


class IpLimiter:
    """A token bucket per IP: `limit` requests, refilled evenly over `window`."""

    def __init__(self, limit: int, window: timedelta, max_tracked: int = MAX_TRACKED) -> None:
        if limit < 1 or window <= timedelta(0):
            raise ValueError("limit must be >= 1 and window positive")
        self.limit = limit
        self.rate = limit / window.total_seconds()  # tokens per second
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, ip: str, now: datetime) -> float:
        """Take one request for `ip`: 0.0 if allowed, else the seconds until one is."""
        t = now.timestamp()
        with self._lock:
            tokens, last = self._buckets.pop(ip, (float(self.limit), t))
            tokens = min(float(self.limit), tokens + (t - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[ip] = (tokens - 1.0, t)
                wait = 0.0
            else:
                self._buckets[ip] = (tokens, t)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        return wait
