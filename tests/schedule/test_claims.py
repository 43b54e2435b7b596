"""The claim on a slot's step, on SQLite and on PostgreSQL: one owner at a time, waiting and
interrupted steps taken again, an abandoned one taken over, a finished one never; and the
send's own gate (approved -> sending as one conditional UPDATE) when two sends start at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from digest.errors import EditionStateError
from digest.schedule import claims
from digest.send.engine import begin
from digest.store.db import transaction
from digest.store.models import (
    RUN_DONE,
    RUN_INTERRUPTED,
    RUN_RUNNING,
    RUN_WAITING,
    STEP_BUILD,
    STEP_SEND,
    Delivery,
    Edition,
    ScheduleRun,
)
from tests.schedule_helpers import SLOT
from tests.send_helpers import LedgerDb, add_subscribers, make_edition

NOW = SLOT


def test_the_first_claim_wins_and_the_second_gets_nothing(ledger_db: LedgerDb) -> None:
    f = ledger_db.factory
    mine = claims.claim(f, SLOT, STEP_SEND, NOW, "a pid 1")
    assert mine is not None and mine.previous is None
    assert claims.claim(f, SLOT, STEP_SEND, NOW, "b pid 2") is None
    assert claims.claim(f, SLOT, STEP_BUILD, NOW, "b pid 2") is not None  # another step
    with f() as session:
        row = session.scalar(select(ScheduleRun).where(ScheduleRun.step == STEP_SEND))
        assert row is not None and (row.state, row.owner, row.attempts) == (
            RUN_RUNNING,
            "a pid 1",
            1,
        )


@pytest.mark.parametrize("state", [RUN_WAITING, RUN_INTERRUPTED])
def test_a_waiting_or_interrupted_step_is_taken_again(ledger_db: LedgerDb, state: str) -> None:
    f = ledger_db.factory
    first = claims.claim(f, SLOT, STEP_SEND, NOW, "a pid 1")
    assert first is not None
    assert claims.release(f, first, state, NOW, "not approved", edition_id=None, notified=True)
    again = claims.claim(f, SLOT, STEP_SEND, NOW + timedelta(minutes=1), "b pid 2")
    assert again is not None and (again.previous, again.notified) == (state, True)
    assert claims.claim(f, SLOT, STEP_SEND, NOW + timedelta(minutes=1), "c pid 3") is None


def test_a_finished_step_is_never_taken_again(ledger_db: LedgerDb) -> None:
    f = ledger_db.factory
    first = claims.claim(f, SLOT, STEP_SEND, NOW, "a pid 1")
    assert first is not None and claims.release(f, first, RUN_DONE, NOW, "sent")
    assert claims.claim(f, SLOT, STEP_SEND, NOW + timedelta(days=30), "b pid 2") is None
    with f() as session:
        assert claims.is_final(session, SLOT, STEP_SEND)


def test_an_abandoned_step_is_taken_over_and_its_old_owner_changes_nothing(
    ledger_db: LedgerDb,
) -> None:
    f = ledger_db.factory
    dead = claims.claim(f, SLOT, STEP_BUILD, NOW, "a pid 1")
    assert dead is not None
    assert claims.claim(f, SLOT, STEP_BUILD, NOW + claims.STALE, "b pid 2") is None  # not yet
    later = NOW + claims.STALE + timedelta(seconds=1)
    taker = claims.claim(f, SLOT, STEP_BUILD, later, "b pid 2")
    assert taker is not None and taker.previous == RUN_RUNNING
    assert not claims.release(f, dead, RUN_DONE, later, "I woke up")  # not its claim any more
    assert claims.release(f, taker, RUN_DONE, later, "built")
    with f() as session:
        row = session.scalar(select(ScheduleRun))
        assert row is not None and (row.state, row.outcome, row.attempts) == (RUN_DONE, "built", 2)


def test_claims_from_many_threads_give_one_owner(ledger_db: LedgerDb) -> None:
    f = ledger_db.factory
    won: list[str] = []
    start = threading.Barrier(6)

    def contender(name: str) -> None:
        start.wait()
        if claims.claim(f, SLOT, STEP_SEND, NOW, name) is not None:
            won.append(name)

    threads = [threading.Thread(target=contender, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1


def test_two_sends_started_at_once_plan_one_audience(ledger_db: LedgerDb) -> None:
    """approved -> sending is one conditional UPDATE: the second begin() finds the edition
    sending (it waited for the first's row lock on PostgreSQL) and starts nothing."""
    f = ledger_db.factory
    edition_id = make_edition(f, NOW)
    add_subscribers(f, 20, NOW - timedelta(days=1))
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def sender() -> None:
        start.wait()
        try:
            begin(f, edition_id, NOW, settings=ledger_db.settings, actor="x")
            outcomes.append("began")
        except EditionStateError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes)[0] == "began" and len(outcomes) == 2
    assert "already being sent" in sorted(outcomes)[1]
    with f() as session:
        assert len(list(session.scalars(select(Delivery.id)))) == 20
        assert session.scalar(select(Edition.status)) == "sending"


def test_the_conditional_update_refuses_a_send_that_lost_the_race(ledger_db: LedgerDb) -> None:
    """The losing interleaving, made deterministic: the edition was read as approved, then
    another send moved it to sending; this one's UPDATE matches no row and starts nothing."""
    from digest.send.engine import _claim_send

    f = ledger_db.factory
    edition_id = make_edition(f, NOW)
    refused = pytest.raises(EditionStateError, match="another send started it a moment ago")
    with refused, transaction(f) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.status == "approved"
        session.execute(update(Edition).where(Edition.id == edition_id).values(status="sending"))
        _claim_send(session, edition, NOW)
