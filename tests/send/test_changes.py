"""digest.send.changes: the subscriber change log that spares a claim reading every subscriber.

Triggers (SQLite, migration 0013) note every change to a subscriber's status, pause or sections
and every erasure, whatever wrote it; a claim joins with the subscribers only when one of its
rows is noted. The skips themselves are tested in test_claims.py and test_engine.py, which
claim through the log on SQLite.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from digest.ledger import registry
from digest.send import changes, claims
from digest.send.plan import plan
from digest.store.db import transaction
from digest.store.models import SEND_FINISHED, EditionSend, SubscriberChange
from subscribers.lifecycle import erase
from subscribers.models import UNSUBSCRIBED, Subscriber
from tests.send_helpers import SECTIONS, add_subscribers, make_edition

KEYS = ["a-key-for-the-suppression-hash"]


def _noted(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(SubscriberChange.subscriber_id).order_by("seq")))


def _id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        return session.scalars(select(Subscriber.id).where(Subscriber.email == email)).one()


def test_every_writer_of_a_change_is_noted(factory, db_path, now) -> None:
    add_subscribers(factory, 5, now)
    with transaction(factory) as session:  # the ORM
        sub = session.scalars(select(Subscriber).where(Subscriber.email == "user0@example.com"))
        sub.one().status = UNSUBSCRIBED
    with transaction(factory) as session:  # a bulk UPDATE
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "user1@example.com")
            .values(paused_until=now + timedelta(days=30))
        )
    raw = sqlite3.connect(db_path)  # anything else that writes the file
    raw.execute("UPDATE subscribers SET sections = '[\"Asia\"]' WHERE email = 'user2@example.com'")
    raw.commit()
    raw.close()
    with transaction(factory) as session:  # an erasure deletes the row
        sub = session.scalars(select(Subscriber).where(Subscriber.email == "user3@example.com"))
        erase(session, sub.one(), now=now, keys=KEYS)
    assert _noted(factory) == [1, 2, 3, 4]


def test_a_change_that_changes_nothing_a_claim_checks_is_not_noted(factory, now) -> None:
    add_subscribers(factory, 2, now)
    with transaction(factory) as session:
        session.execute(update(Subscriber).values(status=Subscriber.status))  # the same value
        session.execute(update(Subscriber).values(name="Someone"))  # not what a claim checks
    assert _noted(factory) == []


def test_an_erasure_after_the_plan_is_skipped_through_the_log(factory, now) -> None:
    add_subscribers(factory, 4, now)
    edition = make_edition(factory, now)
    with transaction(factory) as session:
        planned = plan(session, edition, list(SECTIONS), now, 10)
        since = changes.mark(session)
        registry.start(session, edition, planned.recipients, planned.batches, now, since)
    with transaction(factory) as session:
        sub = session.scalars(select(Subscriber).where(Subscriber.email == "user1@example.com"))
        erase(session, sub.one(), now=now, keys=KEYS)
    with transaction(factory) as session:
        changed = changes.Changed.of_send(session, edition)
        assert changed is not None
        claimed = claims.claim(session, edition, 1, 10, now, changed)
    assert claimed is not None and claimed.skipped == 1
    assert [r.email for r in claimed.rows] == [f"user{i}@example.com" for i in (0, 2, 3)]


def test_a_worker_reads_only_what_was_noted_since_its_last_claim(factory, now) -> None:
    add_subscribers(factory, 3, now)
    changed = changes.Changed(0)
    with transaction(factory) as session:
        session.execute(update(Subscriber).values(status=UNSUBSCRIBED))
    with factory() as session:
        changed.refresh(session.connection())
    assert changed.ids == {1, 2, 3} and changed.last == 3
    assert changed.touches([5, 2]) and changed.touches([None]) and not changed.touches([5, 6])
    with factory() as session:
        changed.refresh(session.connection())
    assert changed.last == 3


def test_the_mark_is_the_last_seq_and_prunes_what_no_unfinished_send_needs(factory, now) -> None:
    add_subscribers(factory, 4, now)
    running, done = make_edition(factory, now), make_edition(factory, now)
    with transaction(factory) as session:
        session.execute(update(Subscriber).where(Subscriber.id <= 2).values(status=UNSUBSCRIBED))
        registry.start(session, running, 1, 1, now, changes.mark(session))  # seq 2: needs 3..
        registry.start(session, done, 1, 1, now, 0)
        session.execute(
            update(EditionSend).where(EditionSend.edition_id == done).values(state=SEND_FINISHED)
        )
        session.execute(update(Subscriber).where(Subscriber.id > 2).values(status=UNSUBSCRIBED))
    with transaction(factory) as session:
        assert changes.mark(session) == 4
    assert _noted(factory) == [3, 4]  # what the running send may still need
    with transaction(factory) as session:
        session.execute(delete(EditionSend))
        assert changes.mark(session) == 4
        assert session.scalar(select(func.count()).select_from(SubscriberChange)) == 0


def test_a_send_planned_before_the_log_checks_every_row(factory, now) -> None:
    add_subscribers(factory, 3, now)
    edition = make_edition(factory, now)
    with transaction(factory) as session:
        planned = plan(session, edition, list(SECTIONS), now, 10)
        registry.start(session, edition, planned.recipients, planned.batches, now)  # no mark
    with transaction(factory) as session:
        session.execute(update(Subscriber).where(Subscriber.id == 2).values(status=UNSUBSCRIBED))
        session.execute(delete(SubscriberChange))  # as if the triggers had not been there
        assert changes.Changed.of_send(session, edition) is None
        claimed = claims.claim(session, edition, 1, 10, now, None)
    assert claimed is not None and claimed.skipped == 1


def test_the_clock_plays_no_part(factory, now) -> None:
    """seq, not a time: a change written with a clock behind the send's is still seen."""
    add_subscribers(factory, 2, now)
    edition = make_edition(factory, now)
    with transaction(factory) as session:
        planned = plan(session, edition, list(SECTIONS), now, 10)
        registry.start(
            session, edition, planned.recipients, planned.batches, now, changes.mark(session)
        )
    with transaction(factory) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == 1)
            .values(status=UNSUBSCRIBED, updated_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
        claimed = claims.claim(
            session, edition, 1, 10, now, changes.Changed.of_send(session, edition)
        )
    assert claimed is not None and claimed.skipped == 1


def test_without_its_triggers_a_sqlite_file_gets_no_mark_and_claims_check_every_row(
    factory, now
) -> None:
    """A file that lost the triggers (a table rebuilt by hand, say) notes nothing: trusting
    the log there would send to whoever unsubscribed during the send."""
    add_subscribers(factory, 3, now)
    edition = make_edition(factory, now)
    with transaction(factory) as session:
        session.execute(text("DROP TRIGGER subscriber_changes_on_update"))
        planned = plan(session, edition, list(SECTIONS), now, 10)
        since = changes.mark(session)
        registry.start(session, edition, planned.recipients, planned.batches, now, since)
    assert since is None
    with transaction(factory) as session:
        session.execute(update(Subscriber).where(Subscriber.id == 2).values(status=UNSUBSCRIBED))
        assert changes.Changed.of_send(session, edition) is None
        claimed = claims.claim(session, edition, 1, 10, now, None)
    assert claimed is not None and claimed.skipped == 1
