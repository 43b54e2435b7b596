"""A person's data across both packages: the access export includes what was sent to them and
what SendGrid reported about it, and erasure removes their address from the delivery ledger and
the stored events too."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digest.ledger.tally import counts
from digest.people.privacy import ERASED_ADDRESS, erase_person, export_person
from digest.send.events import EventResult, process
from digest.store.models import Delivery, Edition, EditionSend, LinkClick, SendBatch, WebhookEvent
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


# --- SendGrid events: exported with the person, scrubbed on erasure ---------------------------

ADDRESS = "ledger@example.com"
CLICKED = "https://news.example/a?ref=ledger%40example.com"


def sendgrid_event(kind: str, n: int, edition_id: int, delivery: str, **extra: Any) -> Any:
    return {
        "event": kind,
        "email": "Ledger@Example.com",
        "timestamp": 1_700_000_000,
        "sg_event_id": f"{kind}-{n}",
        "edition": str(edition_id),
        "delivery": delivery,
        **extra,
    }


def with_events(session: Session, now: datetime) -> tuple[int, list[Any]]:
    """The ledger subscriber's delivery with an open, a click, a bounce naming the address, a
    blocked test send; another subscriber's open beside it. Returns the edition and events."""
    edition_id = with_a_delivery(session, now)
    mine = session.scalars(select(Delivery.id)).one()
    add_confirmed(
        session,
        "other@example.com",
        evidence=Evidence("t"),
        now=now,
        keys=KEYS,
        policy=Policy(SECTIONS),
    )
    other = find_by_email(session, "other@example.com")
    assert other is not None
    theirs = Delivery(
        edition_id=edition_id,
        subscriber_id=other.id,
        email=other.email,
        variant="Asia",
        status="accepted",
        attempts=1,
        created_at=now,
        updated_at=now,
    )
    session.add_all([theirs, EditionSend(edition_id=edition_id, started_at=now, updated_at=now)])
    session.flush()
    bounced = "550 5.1.1 <LEDGER@example.com>: no such user"
    events = [
        sendgrid_event("open", 1, edition_id, str(mine)),
        sendgrid_event("click", 2, edition_id, str(mine), url=CLICKED),
        sendgrid_event("bounce", 3, edition_id, str(mine), type="bounce", reason=bounced),
        sendgrid_event(
            "bounce", 4, edition_id, "test", type="blocked", reason=f"{ADDRESS} blocked"
        ),
        {**sendgrid_event("open", 5, edition_id, str(theirs.id)), "email": "other@example.com"},
    ]
    process_events(session, events, now)
    return edition_id, events


def process_events(session: Session, events: list[Any], now: datetime) -> EventResult:
    return process(session, events, now=now, keys=KEYS, blocked_threshold=3)


def cells_naming(session: Session, text: str) -> list[tuple[str, str]]:
    """(table, column) of every stored value in the ledger and the event store holding `text`."""
    found = []
    for table in (Delivery.__table__, SendBatch.__table__, WebhookEvent.__table__):
        for row in session.execute(select(table)).mappings():
            found += [
                (table.name, str(column))
                for column, value in row.items()
                if value is not None and text in str(value).lower()
            ]
    return found


def engagement(session: Session, edition_id: int) -> tuple[Any, ...]:
    """Every count kept per edition, read from the database: ledger states, opens, clicks per
    link, events stored."""
    send = select(EditionSend.opens, EditionSend.machine_opens, EditionSend.clicks)
    stored = select(func.count()).select_from(WebhookEvent)
    return (
        counts(session, edition_id),
        tuple(session.execute(send.where(EditionSend.edition_id == edition_id)).one()),
        session.execute(select(LinkClick.url, LinkClick.clicks).order_by(LinkClick.url)).all(),
        session.scalar(stored.where(WebhookEvent.edition_id == edition_id)),
    )


def test_the_access_export_lists_the_sendgrid_events_about_them(session, now) -> None:
    edition_id, _ = with_events(session, now)
    record = export_person(session, ADDRESS, KEYS)
    at, received = "2023-11-14T22:13:20Z", "2026-11-20T14:00:00Z"
    event = {"edition_id": edition_id, "occurred_at": at, "received_at": received}
    assert record["webhook_events"] == [
        {**event, "event": "open", "reason": None, "url": None},
        {**event, "event": "click", "reason": None, "url": CLICKED},
        {
            **event,
            "event": "bounce",
            "reason": "bounce: 550 5.1.1 <LEDGER@example.com>: no such user",
            "url": None,
        },
        {**event, "event": "bounce", "reason": "blocked: ledger@example.com blocked", "url": None},
    ]


def test_erasure_leaves_their_address_in_no_ledger_or_event_column(session, now) -> None:
    with_events(session, now)
    assert cells_naming(session, ADDRESS)  # the scenario does store it
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    assert cells_naming(session, ADDRESS) == []
    assert cells_naming(session, "ledger%40example.com") == []


def test_erasure_keeps_the_reasons_without_the_address(session, now) -> None:
    with_events(session, now)
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    error = session.scalar(select(Delivery.error).where(Delivery.email == ERASED_ADDRESS))
    assert error == "bounce: bounce: 550 5.1.1 <erased>: no such user"
    detail = session.scalar(
        select(WebhookEvent.detail).where(WebhookEvent.sg_event_id == "bounce-4")
    )
    assert detail == "blocked: erased blocked"


def test_erasure_unlinks_their_events_from_the_subscriber_id(session, now) -> None:
    with_events(session, now)
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    linked = session.execute(select(WebhookEvent.sg_event_id, WebhookEvent.subscriber_id)).all()
    assert {sg for sg, sub in linked if sub is not None} == {"open-5"}  # the other subscriber


def test_erasure_keeps_every_count_per_edition(session, now) -> None:
    edition_id, _ = with_events(session, now)
    before = engagement(session, edition_id)
    assert before[1:] == ((2, 0, 1), [(CLICKED, 1)], 5)  # the scenario did count
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    assert engagement(session, edition_id) == before


def test_events_repeated_after_erasure_are_still_duplicates(session, now) -> None:
    _, events = with_events(session, now)
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    result = process_events(session, events, now)
    assert (result.new, result.duplicates) == (0, len(events))


def test_a_late_event_for_an_erased_delivery_does_not_bring_the_address_back(session, now) -> None:
    edition_id = with_a_delivery(session, now)
    delivery_id = session.scalars(select(Delivery.id)).one()
    erase_person(session, ADDRESS, now=now, keys=KEYS)
    bounce = sendgrid_event(
        "bounce", 1, edition_id, str(delivery_id), type="bounce", reason="550 <ledger@example.com>"
    )
    process_events(session, [bounce], now)
    assert session.scalar(select(Delivery.error)) == "bounce: bounce: 550 <erased>"
    assert cells_naming(session, ADDRESS) == []


def test_erasure_also_removes_an_address_they_had_when_mailed(session, now) -> None:
    with_a_delivery(session, now)
    session.execute(update(Delivery).values(error="failed: 550 <Ledger@Example.com> unknown"))
    sub = find_by_email(session, ADDRESS)
    assert sub is not None
    sub.email = "new-address@example.com"  # changed after the edition went out
    session.flush()
    erase_person(session, "new-address@example.com", now=now, keys=KEYS)
    assert session.scalar(select(Delivery.error)) == "failed: 550 <erased> unknown"
