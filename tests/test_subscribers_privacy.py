"""A person's data across both packages: the access export includes what was sent to them, and
erasure removes their address from the delivery ledger too."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import Delivery, Edition
from digest.privacy import ERASED_ADDRESS, erase_person, export_person
from subscribers.consent import Evidence
from subscribers.errors import UnknownSubscriber
from subscribers.lifecycle import Policy, add_confirmed, find_by_email, is_suppressed
from tests.conftest import TEST_SECRET
from tests.subscribers_helpers import SECTIONS

KEYS = [TEST_SECRET]


def with_a_delivery(session: Session, now: datetime) -> int:
    add_confirmed(
        session,
        "ledger@example.com",
        evidence=Evidence("t"),
        now=now,
        keys=KEYS,
        policy=Policy(SECTIONS),
    )
    sub = find_by_email(session, "ledger@example.com")
    assert sub is not None
    edition = Edition(
        status="sent",
        window_start=now - timedelta(days=7),
        cutoff=now,
        subject="S",
        created_at=now,
    )
    session.add(edition)
    session.flush()
    session.add(
        Delivery(
            edition_id=edition.id,
            subscriber_id=sub.id,
            email=sub.email,
            variant="Asia|Europe",
            status="accepted",
            attempts=1,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    return edition.id


def test_the_access_export_lists_what_was_sent(session, now) -> None:
    edition_id = with_a_delivery(session, now)
    record = export_person(session, "Ledger@Example.com", KEYS)
    assert record["deliveries"] == [
        {
            "edition_id": edition_id,
            "sections": ["Asia", "Europe"],
            "status": "accepted",
            "planned_at": "2026-11-20T14:00:00Z",
            "updated_at": "2026-11-20T14:00:00Z",
            "error": None,
        }
    ]
    assert record["subscriber"]["email"] == "ledger@example.com"
    assert record["consent_history"][0]["event"] == "admin-add"


def test_erasure_removes_the_address_from_the_ledger(session, now) -> None:
    with_a_delivery(session, now)
    erase_person(session, "ledger@example.com", now=now, keys=KEYS)
    delivery = session.scalars(select(Delivery)).one()
    assert delivery.email == ERASED_ADDRESS and delivery.subscriber_id is None
    assert find_by_email(session, "ledger@example.com") is None
    assert is_suppressed(session, "ledger@example.com", KEYS)


def test_an_unknown_person_is_a_clear_error(session) -> None:
    with pytest.raises(UnknownSubscriber, match=r"no subscriber with the address x@example\.com"):
        export_person(session, "x@example.com", KEYS)
