"""Who is sending what: the send of an edition (its state, the cancel flag) and the worker
processes on it, with heartbeats so that a resume can tell a crashed worker from a live one.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import bindparam, false, select, update
from sqlalchemy.orm import Session

from digest.errors import EditionStateError
from digest.store.models import (
    SEND_CANCELLED,
    SEND_RUNNING,
    SENDING,
    Edition,
    EditionSend,
    SendWorker,
)
from subscribers.fastsql import Prepared


def write_first(session: Session) -> None:
    """SQLite: take the write lock now, before this transaction reads anything.

    In WAL mode a transaction that reads and then writes fails at once with "database is
    locked" if another connection committed in between (it cannot upgrade a stale snapshot);
    busy_timeout does not help. An UPDATE that matches nothing takes the lock up front.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(EditionSend).where(false()).values(planned=EditionSend.planned))


def start(
    session: Session,
    edition_id: int,
    planned: int,
    batches: int,
    now: datetime,
    changes_from: int | None = None,
) -> None:
    session.add(
        EditionSend(
            edition_id=edition_id,
            changes_from=changes_from,
            state=SEND_RUNNING,
            planned=planned,
            batches=batches,
            started_at=now,
            updated_at=now,
            opens=0,
            machine_opens=0,
            clicks=0,
        )
    )
    session.flush()  # new batches take their numbers from this row (ledger.new_batch)


def send_state(session: Session, edition_id: int) -> EditionSend | None:
    return session.get(EditionSend, edition_id)


def set_state(session: Session, edition_id: int, state: str, now: datetime) -> None:
    values: dict[str, object] = {"state": state, "updated_at": now}
    if state == SEND_CANCELLED:
        values["cancelled_at"] = now
    else:
        values["finished_at"] = now if state != SEND_RUNNING else None
        values["cancelled_at"] = None
    session.execute(
        update(EditionSend).where(EditionSend.edition_id == edition_id).values(**values)
    )


def running_editions(session: Session, edition_id: int | None = None) -> list[int]:
    """Editions a worker may help with: being sent, and their send neither cancelled nor
    finished (a cancelled send waits for `--resume`, which sets it running again)."""
    query = (
        select(Edition.id)
        .join(EditionSend, EditionSend.edition_id == Edition.id)
        .where(Edition.status == SENDING, EditionSend.state == SEND_RUNNING)
        .order_by(Edition.id)
    )
    if edition_id is not None:
        query = query.where(Edition.id == edition_id)
    return list(session.scalars(query))


def is_cancelled(session: Session, edition_id: int) -> bool:
    """Asked before every batch: compiled once, on the driver (subscribers/fastsql.py)."""
    state = _STATE.execute(session.connection(), {"e": edition_id}).scalar()
    return state == SEND_CANCELLED


_STATE = Prepared(select(EditionSend.state).where(EditionSend.edition_id == bindparam("e")), ["e"])


# --- workers ----------------------------------------------------------------------------------


def register_worker(session: Session, edition_id: int, now: datetime) -> int:
    worker = SendWorker(
        edition_id=edition_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=now,
        seen_at=now,
    )
    session.add(worker)
    session.flush()
    return worker.id


def heartbeat(session: Session, worker_id: int, now: datetime) -> None:
    session.execute(update(SendWorker).where(SendWorker.id == worker_id).values(seen_at=now))


def stop_worker(session: Session, worker_id: int, now: datetime) -> None:
    session.execute(
        update(SendWorker).where(SendWorker.id == worker_id).values(stopped_at=now, seen_at=now)
    )


def live_workers(session: Session, edition_id: int, now: datetime, timeout_s: int) -> list[int]:
    """Workers that may still be sending: not stopped, and either alive on this host or, on
    another host, seen within `timeout_s` (we cannot look at another machine's processes)."""
    here = socket.gethostname()
    rows = session.execute(
        select(SendWorker.id, SendWorker.host, SendWorker.pid, SendWorker.seen_at).where(
            SendWorker.edition_id == edition_id, SendWorker.stopped_at.is_(None)
        )
    ).all()
    live = []
    for wid, host, pid, seen_at in rows:
        if host == here:
            if pid == os.getpid() or _pid_alive(pid):
                live.append(wid)
        elif now - seen_at < timedelta(seconds=timeout_s):
            live.append(wid)
    return live


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def require_single_worker(session: Session, edition_id: int, now: datetime, timeout: int) -> None:
    """SQLite has no SKIP LOCKED: one worker per send there (the conditional claim keeps even a
    second one from double-claiming, but it would only wait on the lock)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    others = live_workers(session, edition_id, now, timeout)
    if others:
        raise EditionStateError(
            f"edition {edition_id} already has a live worker (#{others[0]}); SQLite runs one "
            "worker per send (use PostgreSQL for more)"
        )
