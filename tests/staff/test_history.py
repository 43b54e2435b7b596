"""The console's numbers of past editions (digest.staff.history) and its dashboard
(digest.staff.dashboard), over real sends with an in-process backend and real webhook events:
planned, accepted, failed, bounced, opens, clicks, unsubscribed (each unsubscribe to the last
edition that reached the person), the most-clicked articles, and the next slot's sentence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition.archive import expected_url
from digest.send.engine import begin, send_edition
from digest.send.events import process
from digest.staff import dashboard, history
from digest.store.db import transaction
from digest.store.models import DRAFT, SKIPPED, Delivery, Edition, EditionItem
from subscribers.consent import Evidence
from subscribers.lifecycle import find_by_email
from subscribers.suppression import suppress_with_evidence
from tests.conftest import TEST_SECRET
from tests.send_helpers import add_subscribers, make_edition
from tests.send_runtime import FakeTime

WEEK = timedelta(days=7)


def send(factory: sessionmaker[Session], settings: Settings, edition_id: int, at: datetime) -> None:
    send_edition(
        factory,
        settings,
        MemoryBackend(),
        edition_id=edition_id,
        now=at,
        runtime=FakeTime(at).runtime(),
    )


def leave(factory: sessionmaker[Session], email: str, at: datetime) -> None:
    with transaction(factory) as session:
        sub = find_by_email(session, email)
        assert sub is not None
        evidence = Evidence("one-click unsubscribe (List-Unsubscribe-Post)")
        suppress_with_evidence(
            session, sub, "unsubscribed", now=at, keys=[TEST_SECRET], evidence=evidence
        )


def event(kind: str, n: int, edition_id: int, delivery: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "email": "someone@example.com",
        "timestamp": 1_700_000_000 + n,
        "sg_event_id": f"{kind}-{edition_id}-{n}",
        "edition": str(edition_id),
        "delivery": str(delivery),
        **extra,
    }


def deliveries(factory: sessionmaker[Session], edition_id: int) -> dict[str, int]:
    with factory() as session:
        rows = session.execute(
            select(Delivery.email, Delivery.id).where(Delivery.edition_id == edition_id)
        )
        return {email: delivery_id for email, delivery_id in rows}


def first_url(factory: sessionmaker[Session], edition_id: int) -> tuple[str, str]:
    with factory() as session:
        item = session.scalars(
            select(EditionItem)
            .where(EditionItem.edition_id == edition_id)
            .order_by(EditionItem.position)
        ).first()
        assert item is not None
        return item.url, item.title


def two_weeks(factory: sessionmaker[Session], settings: Settings, now: datetime) -> tuple[int, int]:
    """Edition `old` sent a week ago to 10 people, one of whom left two days later; edition
    `new` sent now to the other 9, with events: two bounce reports of one delivery, two opens,
    three clicks on an article and one on another link; one more person left an hour later."""
    add_subscribers(factory, 10, now - 2 * WEEK)
    old = make_edition(factory, now - WEEK)
    new = make_edition(factory, now)
    send(factory, settings, old, now - WEEK)
    leave(factory, "user1@example.com", now - WEEK + timedelta(days=2))
    send(factory, settings, new, now)
    leave(factory, "user2@example.com", now + timedelta(hours=1))
    ids = deliveries(factory, new)
    url, _ = first_url(factory, new)
    bounced = ids["user3@example.com"]
    events = [
        event("bounce", 1, new, bounced, type="bounce", reason="550 no such user"),
        event("bounce", 2, new, bounced, type="bounce", reason="550 no such user"),
        event("open", 3, new, ids["user4@example.com"]),
        event("open", 4, new, ids["user5@example.com"]),
        *(event("click", 5 + n, new, ids["user4@example.com"], url=url) for n in range(3)),
        event("click", 9, new, ids["user5@example.com"], url="https://elsewhere.example/x"),
    ]
    with transaction(factory) as session:
        process(session, events, now=now, keys=[TEST_SECRET], blocked_threshold=3)
    return old, new


def test_each_past_edition_has_its_numbers_newest_first(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    old, new = two_weeks(factory, settings, now)
    with factory() as session:
        found = history.past(session, settings)
    assert [n.edition_id for n in found.editions] == [new, old] and found.total == 2
    latest, earlier = found.editions
    assert (latest.planned, latest.accepted, latest.failed) == (9, 8, 1)
    assert (latest.bounced, latest.opens, latest.clicks, latest.unsubscribed) == (1, 2, 4, 1)
    assert (earlier.planned, earlier.accepted, earlier.bounced, earlier.unsubscribed) == (
        10,
        10,
        0,
        1,
    )
    url, title = first_url(factory, new)
    assert [(c.title, c.clicks) for c in latest.top] == [(title, 3)]  # the other link is no article
    assert [(c.url, c.edition_id) for c in found.most_clicked] == [(url, new)]
    assert latest.archive_url == f"{settings.web.base_url}/archive/2026-11-20"


def test_an_unsubscribe_goes_to_the_last_edition_that_reached_the_person(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    """user1 left between the two sends (the old edition's), user2 after the new one; someone
    who left before any edition reached them counts for none."""
    add_subscribers(factory, 1, now - 3 * WEEK, start=50)
    leave(factory, "user50@example.com", now - 3 * WEEK + timedelta(hours=1))
    old, new = two_weeks(factory, settings, now)
    with factory() as session:
        by_id = {n.edition_id: n.unsubscribed for n in history.past(session, settings).editions}
    assert by_id == {new: 1, old: 1}


def test_weeks_without_a_send_are_listed_without_numbers_and_pages_hold(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    sent = make_edition(factory, now - WEEK)
    add_subscribers(factory, 3, now - 2 * WEEK)
    send(factory, settings, sent, now - WEEK)
    skipped = make_edition(factory, now)
    draft = make_edition(factory, now + WEEK)
    with transaction(factory) as session:
        session.execute(update(Edition).where(Edition.id == skipped).values(status=SKIPPED))
        session.execute(update(Edition).where(Edition.id == draft).values(status=DRAFT))
    with factory() as session:
        found = history.past(session, settings)
        first = history.past(session, settings, limit=1)
        second = history.past(session, settings, limit=1, offset=1)
    assert [n.edition_id for n in found.editions] == [skipped, sent]  # the draft is not past
    assert found.editions[0].send_state is None and found.editions[0].planned == 0
    assert [n.edition_id for n in first.editions + second.editions] == [skipped, sent]
    assert first.total == second.total == 2


def test_the_dashboard_knows_the_last_send_and_what_comes_next(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    empty = dashboard.overview(factory, settings, now)
    assert empty.current is None and empty.last is None and not empty.scheduled
    assert "No edition yet" in empty.slots[0].will

    _, new = two_weeks(factory, settings, now)
    board = dashboard.overview(factory, settings, now + timedelta(hours=2))
    assert board.current is not None and board.current["id"] == new
    assert board.last is not None and board.last.edition_id == new and board.last.planned == 9
    # Sent: the next slot is the next week's cut-off.
    (slot,) = board.slots
    assert slot.at == now + WEEK and slot.local == "Fri 2026-11-27 09:00 EST"
    assert "`digest build` makes its draft" in slot.will


def test_the_next_slot_of_a_draft_an_approved_edition_and_a_send_under_way(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    add_subscribers(factory, 3, now)
    with transaction(factory) as session:
        session.execute(update(Edition).where(Edition.id == edition_id).values(status=DRAFT))

    def slot(at: datetime) -> dashboard.NextSlot:
        (only,) = dashboard.overview(factory, settings, at).slots
        return only

    early = slot(now - timedelta(hours=3))
    assert early.at == now and early.closes == now + timedelta(hours=24)
    assert early.will.startswith(f"Edition {edition_id} is a draft: it goes out only once")
    assert "Sat 2026-11-21 09:00 EST" in early.will
    with transaction(factory) as session:
        session.execute(
            update(Edition)
            .where(Edition.id == edition_id)
            .values(status="approved", approved_by="ann@example.com")
        )
    approved = slot(now + timedelta(hours=1))
    assert approved.at == now + timedelta(hours=1)
    assert f"Edition {edition_id} (approved by ann@example.com) goes out" in approved.will
    begin(factory, edition_id, now, settings=settings)
    assert slot(now).will == f"Edition {edition_id} is being sent (sending): 3 recipients to go."


def test_a_draft_shows_the_archive_address_its_send_will_carry(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    """The console's preview carries the "View in browser" link a send will: the bare date,
    unless an archived edition has it."""
    first = make_edition(factory, now)
    with transaction(factory) as session:
        edition = session.get(Edition, first)
        assert edition is not None
        edition.status = DRAFT
        assert expected_url(session, settings, edition, now) == (
            f"{settings.web.base_url}/archive/2026-11-20"
        )
        edition.status = SKIPPED
        assert expected_url(session, settings, edition, now) is None
    add_subscribers(factory, 1, now)
    sent = make_edition(factory, now)  # the same date, a minute earlier: it is sent first
    send(factory, settings, sent, now)
    with factory() as session:
        edition = session.get(Edition, first)
        assert edition is not None
        edition.status = DRAFT
        assert expected_url(session, settings, edition, now + timedelta(minutes=5)) == (
            f"{settings.web.base_url}/archive/2026-11-20-{first}"
        )


def test_with_a_schedule_the_dashboard_tells_what_digest_status_tells(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    """`[schedule] cron` set: the slots and sentences are digest.schedule.status's own."""
    scheduled = settings.model_copy(
        update={"schedule": settings.schedule.model_copy(update={"cron": "0 9 * * fri"})}
    )
    edition_id = make_edition(factory, now)
    with transaction(factory) as session:
        session.execute(update(Edition).where(Edition.id == edition_id).values(status=DRAFT))
    board = dashboard.overview(factory, scheduled, now - timedelta(hours=3))
    assert board.scheduled and board.problems == []
    (slot,) = board.slots
    assert slot.at == now and slot.local == "2026-11-20 09:00 EST"
    assert slot.will == (
        f"Edition {edition_id} is a draft: it is sent at 2026-11-20 09:00 EST only if staff "
        "approve it (until 2026-11-21 09:00 EST)."
    )
    later = dashboard.overview(factory, scheduled, now + timedelta(hours=1))
    assert [s.at for s in later.slots] == [now, now + WEEK]  # the open window, then the next
