"""Fixtures of the send tests: an edition on the test's own SQLite database.

The ledger fixtures (`ledger_db`, `edition_id`) that run a test on SQLite and on PostgreSQL
live in tests/conftest.py, because tests/ledger uses them too."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.send_helpers import make_edition


@pytest.fixture
def edition(factory: sessionmaker[Session], now: datetime) -> int:
    """A built edition of the demo's sections, ready to send, on SQLite."""
    return make_edition(factory, now)
