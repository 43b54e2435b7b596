"""A staff member's "send a test to ..." (digest.send.testmail): addresses as typed in one box,
each checked and named when wrong, at most ten; the test arrives, outside the ledger."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, RecipientStatus
from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.errors import NotFoundError, UsageError
from digest.send.testmail import MAX_ADDRESSES, addresses, send_test_to, split
from digest.store.models import Delivery, EditionEvent
from tests.send_helpers import make_edition


def test_addresses_typed_in_one_box() -> None:
    typed = "Ann@Example.com, bob@example.org;ann@example.com\n  carol@example.net "
    assert addresses(split(typed)) == ["ann@example.com", "bob@example.org", "carol@example.net"]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("ann@example.com, not-an-address", "'not-an-address' is not an email address"),
        ("", "name at least one address"),
        (" ,; ", "name at least one address"),
        (
            ",".join(f"u{i}@example.com" for i in range(MAX_ADDRESSES + 1)),
            "a test goes to at most 10 addresses (11 given)",
        ),
    ],
)
def test_bad_addresses_are_named(typed: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        addresses(split(typed))


def test_the_test_arrives_outside_the_ledger_and_is_in_the_history(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)

    def answer(batch: Batch) -> list[RecipientStatus]:
        return [
            RecipientStatus(r.delivery_id, "accepted" if "ok" in r.email else "rejected", "no")
            for r in batch.recipients
        ]

    backend = MemoryBackend(answer)
    sent = send_test_to(
        factory, settings, backend, edition_id, ["ok@example.com", "no@example.com"], now, "ann"
    )
    assert [(r.email, r.status) for r in sent.results] == [
        ("ok@example.com", "accepted"),
        ("no@example.com", "rejected"),
    ]
    assert not sent.ok and sent.subject.startswith("[TEST] ")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        tested = session.scalars(
            select(EditionEvent).where(EditionEvent.action == "test sent")
        ).one()
    assert tested.actor == "ann" and "ok@example.com, no@example.com" in (tested.detail or "")
    with pytest.raises(NotFoundError):
        send_test_to(factory, settings, backend, 999, ["ok@example.com"], now, "ann")
