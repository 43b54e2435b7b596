"""The delivery ledger's SQL: every move of a Delivery row between states (design.md §3).

planned → claimed → submitted → accepted | failed | deferred; skipped for whoever unsubscribed
before their batch was claimed. Each function is one short transaction that begins with a
write, so that SQLite takes its write lock up front (a read-then-write transaction in WAL mode
fails with "database is locked" when the web app wrote in between) and PostgreSQL workers can
share a send through `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, false, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.errors import EditionStateError
from digest.models import (
    ACCEPTED,
    CLAIMED,
    DEFERRED,
    FAILED,
    PLANNED,
    SEND_CANCELLED,
    SEND_RUNNING,
    SKIPPED,
    SUBMITTED,
    Delivery,
    EditionSend,
    SendWorker,
)
from subscribers.lifecycle import Audience
from subscribers.models import ACTIVE, Subscriber

PLAN_CHUNK = 5000
# Rows that keep a send from being finished.
UNFINISHED = (PLANNED, CLAIMED, DEFERRED, SUBMITTED)
SKIP_REASON = "unsubscribed before their batch was sent"


def variant_key(sections: Sequence[str]) -> str:
    return "|".join(sections)


@dataclass(frozen=True)
class Claimed:
    """A claimed row with what the batch needs: the address and the opaque id for links."""

    delivery_id: int
    email: str
    variant: str
    public_id: str


@dataclass(frozen=True)
class Outcome:
    """What to write for one delivery after the provider answered."""

    delivery_id: int
    status: str  # ACCEPTED, FAILED or DEFERRED
    provider_id: str | None = None
    reason: str | None = None
    not_before: datetime | None = None


def write_first(session: Session) -> None:
    """SQLite: take the write lock now, before this transaction reads anything.

    In WAL mode a transaction that reads and then writes fails at once with "database is
    locked" if another connection committed in between (it cannot upgrade a stale snapshot);
    busy_timeout does not help. An UPDATE that matches nothing takes the lock up front.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(EditionSend).where(false()).values(planned=EditionSend.planned))


# --- the audience -----------------------------------------------------------------------------


def plan(session: Session, edition_id: int, audience: Iterable[Audience], now: datetime) -> int:
    """Freeze the audience: one planned row per recipient, inserted in chunks, one transaction.

    Streams: a million subscribers never sit in memory at once.
    """
    total = 0
    for chunk in _chunks(audience, PLAN_CHUNK):
        session.execute(
            insert(Delivery),
            [
                {
                    "edition_id": edition_id,
                    "subscriber_id": a.subscriber_id,
                    "email": a.email,
                    "variant": variant_key(a.sections),
                    "status": PLANNED,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for a in chunk
            ],
        )
        total += len(chunk)
    return total


def _chunks(items: Iterable[Audience], size: int) -> Iterator[list[Audience]]:
    chunk: list[Audience] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def start(session: Session, edition_id: int, planned: int, now: datetime) -> None:
    session.add(
        EditionSend(
            edition_id=edition_id,
            state=SEND_RUNNING,
            planned=planned,
            started_at=now,
            updated_at=now,
            opens=0,
            machine_opens=0,
            clicks=0,
        )
    )


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


def is_cancelled(session: Session, edition_id: int) -> bool:
    state = session.scalar(select(EditionSend.state).where(EditionSend.edition_id == edition_id))
    return state == SEND_CANCELLED


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


# --- claiming and recording -------------------------------------------------------------------


def claim(
    session: Session, edition_id: int, worker_id: int, size: int, now: datetime
) -> tuple[list[Claimed], int]:
    """Take the next batch of one variant: due deferred rows first, then planned ones.

    One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING: two workers never
    get the same row, and the guard on status keeps a second SQLite process honest too. Rows
    whose subscriber is no longer active are marked skipped here: an unsubscribe that arrives
    during a send is honoured for every batch not yet claimed. Returns (claimed, skipped).
    """
    batch_id = uuid.uuid4().hex
    rows: Sequence[tuple[int, int | None, str, str]] = []
    for status in (DEFERRED, PLANNED):
        rows = _claim_rows(session, edition_id, status, worker_id, batch_id, size, now)
        if rows:
            break
    if not rows:
        return [], 0
    subscriber_ids = [r[1] for r in rows if r[1] is not None]
    active: dict[int, str] = {}
    for start_at in range(0, len(subscriber_ids), 1000):
        active.update(
            session.execute(
                select(Subscriber.id, Subscriber.public_id).where(
                    Subscriber.id.in_(subscriber_ids[start_at : start_at + 1000]),
                    Subscriber.status == ACTIVE,
                )
            ).all()
        )
    gone = [r[0] for r in rows if r[1] not in active]
    if gone:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(gone))
            .values(status=SKIPPED, error=SKIP_REASON, updated_at=now)
        )
    claimed = [Claimed(r[0], r[2], r[3], active[r[1]]) for r in rows if r[1] in active]
    claimed.sort(key=lambda c: c.delivery_id)
    return claimed, len(gone)


def _claim_rows(
    session: Session,
    edition_id: int,
    status: str,
    worker_id: int,
    batch_id: str,
    size: int,
    now: datetime,
) -> Sequence[tuple[int, int | None, str, str]]:
    due = [Delivery.edition_id == edition_id, Delivery.status == status]
    if status == DEFERRED:
        due.append(or_(Delivery.not_before.is_(None), Delivery.not_before <= now))
    first_variant = (
        select(Delivery.variant).where(*due).order_by(Delivery.id).limit(1).scalar_subquery()
    )
    # MATERIALIZED: PostgreSQL may otherwise re-run a SKIP LOCKED subquery inside the UPDATE
    # and take more than `size` rows (each re-run skips the rows the last one locked).
    picked = (
        select(Delivery.id)
        .where(*due, Delivery.variant == first_variant)
        .order_by(Delivery.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(select(picked.c.id)), Delivery.status == status)
        .values(status=CLAIMED, worker_id=worker_id, batch_id=batch_id, updated_at=now)
        .returning(Delivery.id, Delivery.subscriber_id, Delivery.email, Delivery.variant)
        .execution_options(synchronize_session=False)
    )
    return result.all()


def move(
    session: Session,
    ids: Sequence[int],
    frm: str,
    to: str,
    now: datetime,
    **values: object,
) -> int:
    """Rows in state `frm` → `to`; rows another actor already moved (a webhook) are left alone."""
    total = 0
    for start_at in range(0, len(ids), 1000):
        result = session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start_at : start_at + 1000]), Delivery.status == frm)
            .values(status=to, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        total += result.rowcount  # type: ignore[attr-defined]
    return total


def record(session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write the provider's answers to rows still `submitted` (an early webhook event wins).

    Grouped so that a 1000-recipient SendGrid answer (one message id) is one UPDATE.
    """
    groups: dict[tuple[str, str | None, str | None, datetime | None], list[int]] = defaultdict(list)
    for o in outcomes:
        groups[(o.status, o.provider_id, o.reason, o.not_before)].append(o.delivery_id)
    if len(groups) > 50:
        _record_each(session, outcomes, now)
        return
    for (status, provider_id, reason, not_before), ids in groups.items():
        move(
            session,
            ids,
            SUBMITTED,
            status,
            now,
            provider_message_id=provider_id,
            error=reason,
            not_before=not_before,
            attempts=Delivery.attempts + 1,
        )


def _record_each(session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Per-row answers (SMTP, outbox: a message id each) in one executemany."""
    # Core: the ORM would read a list of rows as a by-primary-key bulk update.
    table = cast(Table, Delivery.__table__)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("did"), table.c.status == SUBMITTED)
        .values(
            status=bindparam("st"),
            provider_message_id=bindparam("pid"),
            error=bindparam("why"),
            not_before=bindparam("nb"),
            attempts=table.c.attempts + 1,
            updated_at=now,
        ),
        [
            {
                "did": o.delivery_id,
                "st": o.status,
                "pid": o.provider_id,
                "why": o.reason,
                "nb": o.not_before,
            }
            for o in outcomes
        ],
    )


def attempts_of(session: Session, ids: Sequence[int]) -> int:
    """The most tries any of these rows has had (the batch's attempt number)."""
    value = session.scalar(select(func.max(Delivery.attempts)).where(Delivery.id.in_(ids[:1000])))
    return int(value or 0)


# --- reading the ledger -----------------------------------------------------------------------


def counts(session: Session, edition_id: int) -> Counter[str]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.status)
    )
    return Counter({status: int(n) for status, n in rows})


def pending(session: Session, edition_id: int) -> int:
    """Rows a worker may still claim (planned or deferred)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id, Delivery.status.in_((PLANNED, DEFERRED))
            )
        )
        or 0
    )


def next_due(session: Session, edition_id: int) -> datetime | None:
    """When the earliest deferred row may be tried again (None: nothing deferred)."""
    return session.scalar(
        select(func.min(Delivery.not_before)).where(
            Delivery.edition_id == edition_id, Delivery.status == DEFERRED
        )
    )


def in_flight(session: Session, edition_id: int, workers: Sequence[int]) -> int:
    """Claimed or submitted rows owned by live workers."""
    if not workers:
        return 0
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id,
                Delivery.status.in_((CLAIMED, SUBMITTED)),
                Delivery.worker_id.in_(workers),
            )
        )
        or 0
    )


def orphans(session: Session, edition_id: int, live: Sequence[int], status: str) -> list[int]:
    """Ids of rows in `status` that no live worker owns (their worker crashed)."""
    query = select(Delivery.id).where(Delivery.edition_id == edition_id, Delivery.status == status)
    if live:
        query = query.where(or_(Delivery.worker_id.is_(None), Delivery.worker_id.not_in(live)))
    return list(session.scalars(query.order_by(Delivery.id)))


def sent_since(session: Session, since: datetime) -> int:
    """Messages handed to the provider since `since`, over every edition (warm-up caps)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.status.in_((SUBMITTED, ACCEPTED)), Delivery.updated_at >= since
            )
        )
        or 0
    )


def undelivered(session: Session, edition_id: int, *, everyone: bool) -> Iterator[Delivery]:
    """Rows for the report: with everyone=False only those who did not get the edition."""
    query = select(Delivery).where(Delivery.edition_id == edition_id)
    if not everyone:
        query = query.where(Delivery.status != ACCEPTED)
    yield from session.scalars(query.order_by(Delivery.id).execution_options(yield_per=2000))


def failed_or_skipped(session: Session, edition_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                and_(Delivery.edition_id == edition_id, Delivery.status.in_((FAILED, SKIPPED)))
            )
        )
        or 0
    )
