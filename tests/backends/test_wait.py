"""The provider's wait, read from Retry-After and X-RateLimit-Reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.backends.wait import parse_rate_limit_reset, parse_retry_after, provider_wait

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)


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
