"""Fixtures of the gathering tests: `server`, a local feed server (tests/fakes/feed_server.py)
running for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.feed_server import FeedServer


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running
