"""Fixtures of the web tests: `web`, the subscription site live on 127.0.0.1:0 over the test's
own SQLite database (tests.subscribers_helpers.start_web builds it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.staff_helpers import StaffWeb, start_staff_web
from tests.subscribers_helpers import Web, start_web


@pytest.fixture(name="web")
def web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    running, live = start_web(tmp_path, db_path)
    try:
        yield running
    finally:
        live.stop()
        running.close()


@pytest.fixture(name="staff_web")
def staff_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[StaffWeb]:
    """The app on the demo week's draft, six subscribers, a publisher and an editor."""
    running = start_staff_web(tmp_path, db_path)
    try:
        yield running
    finally:
        running.close()
