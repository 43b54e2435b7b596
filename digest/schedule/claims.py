"""The claim on a slot's step: a row of `schedule_runs`, taken by one process at a time.

Whoever inserts the (slot, step) row first owns the step; the unique constraint refuses the
others, on SQLite and on PostgreSQL alike (the second INSERT waits for the first to commit,
then fails). A row left `waiting` (for approval) or `interrupted` (a send stopped by SIGTERM)
is taken again by the next run, and one left `running` by a process that stopped updating it
for `STALE` is taken over: both with a locked read and an UPDATE in one transaction, so two
processes never take the same row. A final row (done, skipped, failed) is never taken again.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.store.db import transaction
from digest.store.models import (
    RUN_FINAL,
    RUN_INTERRUPTED,
    RUN_RUNNING,
    RUN_WAITING,
    ScheduleRun,
)

# A step whose owner has not updated it for this long is taken for abandoned (a killed
# process): longer than any build takes, and a send in progress is guarded by its edition's
# own status besides.
STALE = timedelta(minutes=30)
RETAKEN = (RUN_WAITING, RUN_INTERRUPTED)


def owner_name() -> str:
    """Who holds a claim: this process, as an operator would look for it."""
    return f"{socket.gethostname()} pid {os.getpid()}"[:300]


@dataclass(frozen=True)
class Claim:
    """A step this process now owns. `previous` is the state it was taken from (None: the
    row is new); `notified` whether staff were already told of that state."""

    run_id: int
    slot: datetime
    step: str
    owner: str
    previous: str | None = None
    notified: bool = False
    edition_id: int | None = None


def claim(
    factory: sessionmaker[Session], slot: datetime, step: str, now: datetime, owner: str
) -> Claim | None:
    """The step for this process, or None when another owns it or it is over."""
    try:
        with transaction(factory) as session:
            row = ScheduleRun(
                slot=slot,
                step=step,
                state=RUN_RUNNING,
                owner=owner,
                attempts=1,
                started_at=now,
                updated_at=now,
                notified=False,
            )
            session.add(row)
            session.flush()
            return Claim(row.id, slot, step, owner)
    except IntegrityError:
        return _retake(factory, slot, step, now, owner)


def _retake(
    factory: sessionmaker[Session], slot: datetime, step: str, now: datetime, owner: str
) -> Claim | None:
    with transaction(factory) as session:
        _write_first(session)
        row = session.scalar(
            select(ScheduleRun)
            .where(ScheduleRun.slot == slot, ScheduleRun.step == step)
            .with_for_update()
        )
        if row is None or not _takeable(row, now):
            return None
        previous = row.state
        row.state, row.owner, row.updated_at = RUN_RUNNING, owner, now
        row.attempts += 1
        return Claim(row.id, slot, step, owner, previous, row.notified, row.edition_id)


def _takeable(row: ScheduleRun, now: datetime) -> bool:
    if row.state in RETAKEN:
        return True
    return row.state == RUN_RUNNING and row.updated_at < now - STALE


def _write_first(session: Session) -> None:
    """SQLite: take the write lock before reading (see digest.ledger.registry.write_first)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(ScheduleRun).where(false()).values(state=ScheduleRun.state))


def existing(session: Session, slot: datetime, step: str) -> ScheduleRun | None:
    return session.scalar(
        select(ScheduleRun).where(ScheduleRun.slot == slot, ScheduleRun.step == step)
    )


def is_final(session: Session, slot: datetime, step: str) -> bool:
    row = existing(session, slot, step)
    return row is not None and row.state in RUN_FINAL


def ran_before(session: Session, slot: datetime) -> bool:
    """Whether the schedule ran for any earlier slot: a slot it then has no trace of was
    missed (on a new installation, the slots before its first run were not)."""
    found = select(ScheduleRun.id).where(ScheduleRun.slot < slot).limit(1)
    return session.scalar(found) is not None


def release(
    factory: sessionmaker[Session],
    held: Claim,
    state: str,
    now: datetime,
    outcome: str,
    *,
    edition_id: int | None = None,
    notified: bool = False,
) -> bool:
    """Leave the step in `state` with its outcome, if it is still ours (a process that was
    taken for dead and then woke up changes nothing). False when it was not."""
    values: dict[str, object] = {
        "state": state,
        "updated_at": now,
        "outcome": outcome[:4000],
        "notified": notified,
        "finished_at": now if state in RUN_FINAL else None,
    }
    if edition_id is not None:
        values["edition_id"] = edition_id
    with transaction(factory) as session:
        moved = session.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.id == held.run_id,
                ScheduleRun.owner == held.owner,
                ScheduleRun.state == RUN_RUNNING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def touch(factory: sessionmaker[Session], held: Claim, now: datetime) -> None:
    """Still working on it (between the phases of a long step)."""
    with transaction(factory) as session:
        session.execute(
            update(ScheduleRun)
            .where(ScheduleRun.id == held.run_id, ScheduleRun.owner == held.owner)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
