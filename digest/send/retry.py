"""When to try a refused batch again: exponential backoff with jitter, or the provider's word.

SendGrid answers 429 with `Retry-After` or `X-RateLimit-Reset` (unix time) and asks clients to
drive backoff from those headers (docs/standards.md §3 "Responses, errors, rate limits"): the
backend reads them (backends/wait.py) and hands the wait over in its error or status; 5xx,
timeouts and connection errors get exponential backoff with jitter so that many workers do not
retry in lockstep. Pure: the random source and `now` are passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from digest.config import DeliverySettings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    # The provider's own wait is honoured up to this (a wrong header cannot stall a send for a day).
    max_provider_wait: float = 3600.0
    # Share of the delay that is random: 0.5 waits between half and all of the backoff.
    jitter: float = 0.5
    retry_on_timeout: bool = True

    @classmethod
    def from_settings(cls, delivery: DeliverySettings) -> RetryPolicy:
        return cls(
            max_attempts=delivery.retry_max_attempts,
            base_delay=delivery.retry_base_delay,
            max_delay=delivery.retry_max_delay,
            max_provider_wait=delivery.retry_max_provider_wait,
            retry_on_timeout=delivery.retry_on_timeout,
        )

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based).

        The provider's own wait wins when it gave one: never shorter, and not cut to our
        backoff's max_delay either (retrying before SendGrid's window resets only spends a try),
        only to max_provider_wait. Otherwise base * 2^(attempt-1), jittered, up to max_delay.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_provider_wait)
        backoff = min(self.base_delay * 2.0 ** max(attempt - 1, 0), self.max_delay)
        return backoff * (1 - self.jitter + self.jitter * rng.random())

    def gives_up(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
