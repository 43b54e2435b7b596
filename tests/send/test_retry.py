"""Backoff with jitter, the provider's wait honoured up to a cap, giving up."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from digest.send.retry import RetryPolicy


@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_backoff_doubles_within_its_jitter_and_never_passes_the_cap(
    attempt: int, seed: int
) -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=300.0, jitter=0.5)
    delay = policy.delay(attempt, random.Random(seed))
    ceiling = min(2.0 * 2 ** (attempt - 1), 300.0)
    assert ceiling * 0.5 <= delay <= ceiling


def test_the_providers_wait_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_delay=60.0, max_provider_wait=3600.0)
    assert policy.delay(1, random.Random(1), retry_after=17.0) == 17.0
    assert policy.delay(1, random.Random(1), retry_after=86400.0) == 3600.0


def test_the_providers_wait_is_not_cut_to_our_own_backoff_cap() -> None:
    policy = RetryPolicy(max_delay=60.0, max_provider_wait=3600.0)
    assert policy.delay(1, random.Random(1), retry_after=900.0) == 900.0


def test_gives_up_at_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.gives_up(2) and policy.gives_up(3)
