"""digest.ledger.registry: the send of an edition (its state, the cancel flag) and the workers
on it, with heartbeats so that a resume can tell a crashed worker from a live one."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import EditionStateError
from digest.ledger import registry
from digest.store.db import transaction
from digest.store.models import (
    SEND_CANCELLED,
    SEND_FINISHED,
    SEND_RUNNING,
    EditionSend,
    SendWorker,
)
from tests.send_helpers import LedgerDb, make_edition

TIMEOUT = 60


@pytest.fixture
def edition(factory: sessionmaker[Session], now: datetime) -> int:
    return make_edition(factory, now)


@pytest.fixture
def started(factory: sessionmaker[Session], edition: int, now: datetime) -> int:
    """The edition with its send started: 12 recipients in 3 batches."""
    with transaction(factory) as session:
        registry.start(session, edition, 12, 3, now)
    return edition


def _send(factory: sessionmaker[Session], edition: int) -> EditionSend:
    with factory() as session:
        send = registry.send_state(session, edition)
        assert send is not None
        return send


def _move(factory: sessionmaker[Session], worker: int, **values: object) -> None:
    with transaction(factory) as session:
        session.execute(update(SendWorker).where(SendWorker.id == worker).values(**values))


def _live(factory: sessionmaker[Session], edition: int, now: datetime) -> list[int]:
    with factory() as session:
        return registry.live_workers(session, edition, now, TIMEOUT)


def _register(factory: sessionmaker[Session], edition: int, now: datetime) -> int:
    with transaction(factory) as session:
        return registry.register_worker(session, edition, now)


def _dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- the send ---------------------------------------------------------------------------------


def test_start_registers_a_running_send(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    send = _send(factory, started)
    assert (send.state, send.planned, send.batches) == (SEND_RUNNING, 12, 3)
    assert (send.started_at, send.updated_at) == (now, now)
    assert (send.cancelled_at, send.finished_at) == (None, None)
    assert (send.opens, send.machine_opens, send.clicks) == (0, 0, 0)


def test_an_edition_never_sent_has_no_send_state(
    factory: sessionmaker[Session], edition: int
) -> None:
    with factory() as session:
        assert registry.send_state(session, edition) is None
        assert not registry.is_cancelled(session, edition)


def test_a_send_starts_once(factory: sessionmaker[Session], started: int, now: datetime) -> None:
    with pytest.raises(IntegrityError), transaction(factory) as session:
        registry.start(session, started, 1, 1, now + timedelta(hours=1))
    assert _send(factory, started).started_at == now


def test_cancel_sets_the_flag_and_when(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    later = now + timedelta(minutes=5)
    with transaction(factory) as session:
        registry.set_state(session, started, SEND_CANCELLED, later)
    send = _send(factory, started)
    assert (send.state, send.cancelled_at, send.finished_at, send.updated_at) == (
        SEND_CANCELLED,
        later,
        None,
        later,
    )
    with factory() as session:
        assert registry.is_cancelled(session, started)


def test_running_again_clears_the_cancel(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    with transaction(factory) as session:
        registry.set_state(session, started, SEND_CANCELLED, now + timedelta(minutes=5))
    resumed = now + timedelta(minutes=9)
    with transaction(factory) as session:
        registry.set_state(session, started, SEND_RUNNING, resumed)
    send = _send(factory, started)
    assert (send.state, send.cancelled_at, send.finished_at, send.updated_at) == (
        SEND_RUNNING,
        None,
        None,
        resumed,
    )
    with factory() as session:
        assert not registry.is_cancelled(session, started)


def test_finishing_stamps_the_end_and_clears_a_cancel(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    with transaction(factory) as session:
        registry.set_state(session, started, SEND_CANCELLED, now + timedelta(minutes=5))
    done = now + timedelta(hours=1)
    with transaction(factory) as session:
        registry.set_state(session, started, SEND_FINISHED, done)
    send = _send(factory, started)
    assert (send.state, send.finished_at, send.cancelled_at) == (SEND_FINISHED, done, None)
    with factory() as session:
        assert not registry.is_cancelled(session, started)


def test_set_state_touches_only_its_own_send(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    other = make_edition(factory, now)
    with transaction(factory) as session:
        registry.start(session, other, 1, 1, now)
        registry.set_state(session, other, SEND_CANCELLED, now)
    assert _send(factory, started).state == SEND_RUNNING
    assert _send(factory, other).state == SEND_CANCELLED


# --- workers ----------------------------------------------------------------------------------


def test_a_registered_worker_is_this_process(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    first, second = _register(factory, started, now), _register(factory, started, now)
    assert first != second
    with factory() as session:
        worker = session.get_one(SendWorker, first)
    assert (worker.edition_id, worker.host, worker.pid) == (
        started,
        socket.gethostname(),
        os.getpid(),
    )
    assert (worker.started_at, worker.seen_at, worker.stopped_at) == (now, now, None)
    assert _live(factory, started, now) == [first, second]


def test_a_heartbeat_moves_only_that_workers_seen_at(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    beating, other = _register(factory, started, now), _register(factory, started, now)
    later = now + timedelta(seconds=10)
    with transaction(factory) as session:
        registry.heartbeat(session, beating, later)
    with factory() as session:
        assert session.get_one(SendWorker, beating).seen_at == later
        assert session.get_one(SendWorker, other).seen_at == now


def test_a_stopped_worker_is_not_live(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    stopping, staying = _register(factory, started, now), _register(factory, started, now)
    later = now + timedelta(seconds=3)
    with transaction(factory) as session:
        registry.stop_worker(session, stopping, later)
    with factory() as session:
        worker = session.get_one(SendWorker, stopping)
    assert (worker.stopped_at, worker.seen_at) == (later, later)
    assert _live(factory, started, later) == [staying]


def test_a_worker_on_this_host_lives_as_long_as_its_process(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    mine, gone, init = (_register(factory, started, now) for _ in range(3))
    _move(factory, gone, pid=_dead_pid())
    _move(factory, init, pid=1)  # alive (not ours to signal unless we are root)
    much_later = now + timedelta(days=1)  # no heartbeat for a day: the process is what counts
    assert _live(factory, started, much_later) == [mine, init]


def test_a_worker_on_another_host_lives_until_its_heartbeat_times_out(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    remote = _register(factory, started, now)
    _move(factory, remote, host="elsewhere.example", pid=_dead_pid())
    assert _live(factory, started, now + timedelta(seconds=TIMEOUT - 1)) == [remote]
    assert _live(factory, started, now + timedelta(seconds=TIMEOUT)) == []
    with transaction(factory) as session:
        registry.heartbeat(session, remote, now + timedelta(seconds=TIMEOUT))
    assert _live(factory, started, now + timedelta(seconds=TIMEOUT + 30)) == [remote]


def test_live_workers_are_those_of_the_edition_asked_about(
    factory: sessionmaker[Session], started: int, now: datetime
) -> None:
    other = make_edition(factory, now)
    with transaction(factory) as session:
        registry.start(session, other, 1, 1, now)
    theirs = _register(factory, other, now)
    ours = _register(factory, started, now)
    assert _live(factory, started, now) == [ours]
    assert _live(factory, other, now) == [theirs]


# --- SQLite: one writer, one worker -----------------------------------------------------------


@pytest.fixture
def ledger_send(ledger_db: LedgerDb, edition_id: int, now: datetime) -> int:
    with transaction(ledger_db.factory) as session:
        registry.start(session, edition_id, 1, 1, now)
    return edition_id


def test_one_live_worker_per_send_on_sqlite_any_number_on_postgres(
    ledger_db: LedgerDb, ledger_send: int, now: datetime
) -> None:
    worker = _register(ledger_db.factory, ledger_send, now)
    with ledger_db.factory() as session:
        if ledger_db.name == "sqlite":
            with pytest.raises(EditionStateError, match=rf"live worker \(#{worker}\).*PostgreSQL"):
                registry.require_single_worker(session, ledger_send, now, TIMEOUT)
        else:
            registry.require_single_worker(session, ledger_send, now, TIMEOUT)


def test_a_stopped_worker_leaves_the_send_to_the_next(
    ledger_db: LedgerDb, ledger_send: int, now: datetime
) -> None:
    worker = _register(ledger_db.factory, ledger_send, now)
    with transaction(ledger_db.factory) as session:
        registry.stop_worker(session, worker, now)
    with ledger_db.factory() as session:
        registry.require_single_worker(session, ledger_send, now, TIMEOUT)


def test_write_first_takes_sqlites_write_lock_before_any_read(
    factory: sessionmaker[Session], started: int, db_path: Path
) -> None:
    def another_writer_can_begin() -> bool:
        other = sqlite3.connect(db_path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            return True
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return False
        finally:
            other.close()

    with factory() as session, session.begin():
        registry.send_state(session, started)  # a read alone leaves others free to write
        assert another_writer_can_begin()
    with factory() as session, session.begin():
        registry.write_first(session)
        assert not another_writer_can_begin()
        assert registry.send_state(session, started) is not None  # nothing was changed
    assert another_writer_can_begin()
    assert _send(factory, started).planned == 12


@pytest.mark.postgres
@pytest.mark.parametrize("ledger_db", ["postgres"], indirect=True)
def test_write_first_sends_nothing_to_postgres(ledger_db: LedgerDb, ledger_send: int) -> None:
    statements: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(ledger_db.engine, "before_cursor_execute", note)
    try:
        with ledger_db.factory() as session, session.begin():
            registry.write_first(session)  # row locks do the work there
    finally:
        event.remove(ledger_db.engine, "before_cursor_execute", note)
    assert statements == []
