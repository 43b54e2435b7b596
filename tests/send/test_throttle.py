"""Rate windows, the warm-up ramp, and the delivery settings that feed them."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import DeliverySettings
from digest.send.throttle import Rate, Throttle, warmup_cap


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
