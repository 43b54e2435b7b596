"""The provider's own word on when to try again, read from its answer's headers.

SendGrid answers 429 (and sometimes 5xx) with `Retry-After` or `X-RateLimit-Reset` (unix time)
and asks clients to drive backoff from those headers (docs/standards.md §3 "Responses, errors,
rate limits"). Reading them is part of understanding the provider's answer, so it lives with the
backends; what to do with the wait (honour it, cap it, give up) is the engine's retry policy
(send/retry.py). Pure: `now` is passed in.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None when unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def parse_rate_limit_reset(value: str | None, now: datetime) -> float | None:
    """`X-RateLimit-Reset`: the unix time the window resets; seconds from `now` until then."""
    if not value:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    return max(reset - now.timestamp(), 0.0) if math.isfinite(reset) else None


def provider_wait(
    retry_after: str | None, rate_limit_reset: str | None, now: datetime
) -> float | None:
    """The provider's wait from either header; the longer one when both are present."""
    waits = [
        w
        for w in (
            parse_retry_after(retry_after, now),
            parse_rate_limit_reset(rate_limit_reset, now),
        )
        if w is not None
    ]
    return max(waits) if waits else None
