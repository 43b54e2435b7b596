"""Backoff, the provider's wait headers, rate windows, the warm-up ramp, and the sender pipeline."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.backends.wait import parse_rate_limit_reset, parse_retry_after, provider_wait
from digest.config import DeliverySettings
from digest.send.overlap import Overlap
from digest.send.retry import RetryPolicy
from digest.send.throttle import Rate, Throttle, warmup_cap

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)


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


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 7 ", 7.0), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date() -> None:
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0


@given(st.text(max_size=40))
def test_header_parsing_never_raises(value: str) -> None:
    for parse in (parse_retry_after, parse_rate_limit_reset):
        result = parse(value, NOW)
        assert result is None or result >= 0


def test_rate_limit_reset_is_a_unix_time() -> None:
    assert parse_rate_limit_reset(str(int(NOW.timestamp()) + 42), NOW) == 42.0
    assert provider_wait("5", str(int(NOW.timestamp()) + 42), NOW) == 42.0
    assert provider_wait(None, None, NOW) is None


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_a_per_second_window_holds_each_batch_to_the_limit() -> None:
    clock = _Clock()
    throttle = Throttle([Rate.per_second(5)], clock.now, clock.sleep)
    for _ in range(4):
        throttle.acquire(5)
    assert clock.slept == [1.0, 1.0, 1.0]


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_no_window_ever_holds_more_than_the_limit(batches: list[int]) -> None:
    clock = _Clock()
    throttle = Throttle([Rate(60, 10.0)], clock.now, clock.sleep)
    sent: list[tuple[float, int]] = []
    for n in batches:
        throttle.acquire(n)
        sent.append((clock.t, min(n, 60)))
    for start, _ in sent:
        assert sum(k for t, k in sent if start <= t < start + 10.0) <= 60


def test_an_hourly_allowance_may_go_at_once_then_waits_for_the_hour() -> None:
    clock = _Clock()
    throttle = Throttle([Rate(1000, 3600.0)], clock.now, clock.sleep)
    throttle.acquire(600)
    throttle.acquire(400)
    assert clock.slept == []
    throttle.acquire(100)
    assert clock.slept == [3600.0]


def test_a_pause_holds_the_next_batch() -> None:
    clock = _Clock()
    throttle = Throttle([], clock.now, clock.sleep)
    throttle.pause(12.5)
    throttle.acquire(1)
    assert clock.slept == [12.5]


def test_fractional_rates_space_single_messages() -> None:
    assert Rate.per_second(0.5) == Rate(1, 2.0)


def test_warm_up_ramp_by_day() -> None:
    d = DeliverySettings(warmup_start=date(2026, 11, 1), warmup_daily=[100, 500])
    assert warmup_cap(d, date(2026, 10, 31)) == 100
    assert warmup_cap(d, date(2026, 11, 1)) == 100
    assert warmup_cap(d, date(2026, 11, 2)) == 500
    assert warmup_cap(d, date(2026, 11, 3)) is None
    assert warmup_cap(DeliverySettings(), date(2026, 11, 3)) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"warmup_daily": [10]}, "warmup_daily needs warmup_start"),
        ({"dkim_key_path": "k.pem"}, "dkim_key_path and dkim_selector must be set together"),
        ({"webhook_public_key": "not base64!"}, "not a base64 DER public key"),
        ({"rate_per_second": 0}, "greater than 0"),
    ],
)
def test_bad_delivery_settings_are_refused_with_a_reason(values: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        DeliverySettings(**values)


def test_the_pipeline_sends_in_order_and_holds_at_most_depth_batches() -> None:
    sent: list[int] = []
    outstanding = [0]
    most = [0]
    lock = threading.Lock()

    def deliver(job: int) -> None:
        with lock:
            sent.append(job)
            outstanding[0] -= 1

    with Overlap[int](deliver, lambda job: None, depth=2) as pipe:
        for job in range(50):
            pipe.reserve()
            with lock:
                outstanding[0] += 1
                most[0] = max(most[0], outstanding[0])
            pipe.put(job)
        pipe.drain()
    assert sent == list(range(50))
    assert most[0] <= 2


def test_a_failed_send_releases_what_is_queued_and_raises_in_the_caller() -> None:
    released: list[int] = []
    gate = threading.Event()

    def deliver(job: int) -> None:
        gate.wait(5)
        raise RuntimeError(f"job {job} failed")

    pipeline = Overlap[int](deliver, released.append, depth=3)
    with pytest.raises(RuntimeError, match="job 0 failed"), pipeline as pipe:
        for job in range(3):
            pipe.reserve()
            pipe.put(job)
        gate.set()
        pipe.drain()
    assert released == [1, 2]


def test_depth_one_runs_inline() -> None:
    threads: list[str] = []
    with Overlap[int](
        lambda job: threads.append(threading.current_thread().name), lambda job: None, depth=1
    ) as pipe:
        pipe.reserve()
        pipe.put(1)
    assert threads == [threading.current_thread().name]
