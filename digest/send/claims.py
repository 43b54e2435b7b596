"""Taking the next batch of a send (docs/design.md §3): planned batches, then due deferred ones.

A claim is one small UPDATE on a `send_batches` row (PostgreSQL: the row picked with `FOR UPDATE
SKIP LOCKED`, so workers on several machines never take the same batch and never wait on each
other) and one read of its rows, joined with their subscribers: whoever is no longer active,
is paused now, or no longer chose any section of their variant is skipped here, so an
unsubscribe (from everything or from the sections they would get) or a pause that arrives during
a send is honoured for every batch not yet claimed. Someone who dropped one of several sections
still gets the variant frozen for them at the start. On SQLite a worker passes the send's change
log (send/changes.py): rows none of whose subscribers changed since the plan are read without
the join.

A batch larger than the claim wants (a smaller batch size, the warm-up cap) gives the rest to a
new batch in its old state. Rows with a state of their own that want sending again (planned by a
resume, deferred alone) are gathered into a new batch of one variant.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, overload
from typing import cast as typing_cast

from sqlalchemy import Table, Text, and_, bindparam, case, cast, or_, select, update
from sqlalchemy.orm import Session

from digest.ledger import moves
from digest.ledger.moves import B, D
from digest.send.changes import Changed
from digest.store.models import CLAIMED, DEFERRED, PLANNED, SKIPPED
from subscribers.fastsql import Prepared
from subscribers.lifecycle import sections_for
from subscribers.models import ACTIVE, Subscriber

S = typing_cast(Table, Subscriber.__table__)


class Claimed(NamedTuple):
    """A claimed row with what the batch needs: the address and the opaque id for links."""

    delivery_id: int
    email: str
    variant: str
    public_id: str


class ClaimedRows(Sequence[Claimed]):
    """A claimed batch's rows as columns, as the claim read them (a send claims a million
    rows: no tuple per row is built unless asked for)."""

    __slots__ = ("emails", "ids", "public_ids", "variant")

    def __init__(
        self,
        variant: str,
        ids: Sequence[int],
        emails: Sequence[str],
        public_ids: Sequence[str],
    ) -> None:
        self.variant = variant
        self.ids = ids
        self.emails = emails
        self.public_ids = public_ids

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Claimed: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Claimed]: ...

    def __getitem__(self, index: int | slice) -> Claimed | Sequence[Claimed]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self.ids))[index]]
        return Claimed(self.ids[index], self.emails[index], self.variant, self.public_ids[index])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ClaimedBatch:
    # The batch's number in the edition's send (send_batches.id); -1 when `rows` is empty.
    batch: int
    rows: Sequence[Claimed]
    # Rows skipped on the way (unsubscribed since planning), in this batch or in empty ones.
    skipped: int
    # This try's number: 1 for rows never tried, more for deferred rows tried again.
    attempt: int


class _Picked(NamedTuple):
    number: int
    variant: str
    attempts: int
    was: str  # the state it was claimed from
    not_before: datetime | None


def claim(
    session: Session,
    edition_id: int,
    worker_id: int,
    size: int,
    now: datetime,
    changed: Changed | None = None,
) -> ClaimedBatch | None:
    """The next batch of at most `size` rows, claimed by `worker_id`; None when nothing is
    claimable now. A batch whose rows were all skipped is passed over (its skips counted):
    an empty ClaimedBatch says only that some were skipped and nothing else is claimable.
    `changed`: the send's change log as this worker has read it (None: check every row)."""
    skipped = 0
    while True:
        picked = _pick(session, edition_id, worker_id, size, now)
        if picked is None:
            return ClaimedBatch(-1, [], skipped, 0) if skipped else None
        rows, gone, attempt = _rows(session, edition_id, picked, size, now, changed)
        skipped += gone
        if rows:
            return ClaimedBatch(picked.number, rows, skipped, attempt)
        # Nobody left to send it to: the batch is done with.
        moves.move(session, edition_id, picked.number, CLAIMED, SKIPPED, now)


def _pick(
    session: Session, edition_id: int, worker_id: int, size: int, now: datetime
) -> _Picked | None:
    """Planned batches, then planned rows of their own (a resume's), then due deferred batches,
    then due deferred rows: a retry waits for its `not_before` anyway, so the planned work goes
    first."""
    return (
        _take_batch(session, edition_id, worker_id, PLANNED, now)
        or _gather(session, edition_id, worker_id, PLANNED, size, now)
        or _take_batch(session, edition_id, worker_id, DEFERRED, now)
        or _gather(session, edition_id, worker_id, DEFERRED, size, now)
    )


def _claim_statement(status: str) -> Any:
    """UPDATE the lowest-numbered batch of an edition in `status` to claimed, returning it
    (built once: a million recipients make a thousand claims)."""
    due: list[Any] = [B.c.edition_id == bindparam("e"), B.c.status == status]
    if status == DEFERRED:
        due.append(or_(B.c.not_before.is_(None), B.c.not_before <= _NOW))
    first = (
        select(B.c.id)
        .where(*due)
        .order_by(B.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(B)
        # The state again: a second SQLite process that read the same number finds it taken.
        .where(B.c.edition_id == bindparam("e"), B.c.id == first, B.c.status == status)
        .values(status=CLAIMED, worker_id=bindparam("w"), updated_at=_NOW)
        .returning(B.c.id, B.c.variant, B.c.attempts, B.c.not_before)
    )


_NOW = bindparam("now", type_=B.c.updated_at.type)
# Compiled once and run on the driver's cursor (subscribers/fastsql.py): a million recipients
# make a thousand claims, and SQLAlchemy's execution path cost a third of each.
_CLAIM = {
    status: Prepared(_claim_statement(status), ["e", "w", "now"]) for status in (PLANNED, DEFERRED)
}
# A claimed batch's rows that follow it, and whether their subscriber may still be mailed: 1
# when active and not paused now (the rest of the audience query's rules were applied when the
# audience was frozen), and the stored `sections` (as JSON text) for the variant's check.
_ROWS = Prepared(
    select(
        D.c.id,
        D.c.email,
        D.c.public_id,
        D.c.attempts,
        case(
            (
                and_(
                    S.c.status == ACTIVE,
                    or_(
                        S.c.paused_until.is_(None),
                        S.c.paused_until <= bindparam("now", type_=S.c.paused_until.type),
                    ),
                ),
                1,
            ),
            else_=0,
        ),
        cast(S.c.sections, Text),
    )
    .select_from(D.outerjoin(S, S.c.id == D.c.subscriber_id))
    .where(D.c.edition_id == bindparam("e"), D.c.batch_id == bindparam("b"), D.c.status.is_(None))
    .order_by(D.c.id),
    ["e", "b", "now"],
)


# The same rows without their subscribers: what a claim reads when none of them changed since
# the plan (send/changes.py); the subscriber id tells whether one did.
_OWN = Prepared(
    select(D.c.id, D.c.email, D.c.public_id, D.c.attempts, D.c.subscriber_id)
    .where(D.c.edition_id == bindparam("e"), D.c.batch_id == bindparam("b"), D.c.status.is_(None))
    .order_by(D.c.id),
    ["e", "b"],
)


def _take_batch(
    session: Session, edition_id: int, worker_id: int, status: str, now: datetime
) -> _Picked | None:
    """The lowest-numbered batch in `status`, claimed: one UPDATE of one batch row."""
    params = {"e": edition_id, "w": worker_id, "now": now}
    found = _CLAIM[status].first(session.connection(), params)
    if found is None:
        return None
    number, variant, attempts, not_before = found
    if not_before is not None:  # as the driver wrote it: read again, as a datetime (rare)
        not_before = session.scalar(
            select(B.c.not_before).where(B.c.edition_id == edition_id, B.c.id == number)
        )
    return _Picked(number, variant, attempts, status, not_before)


def _gather(
    session: Session, edition_id: int, worker_id: int, status: str, size: int, now: datetime
) -> _Picked | None:
    """Up to `size` rows of one variant with the state `status` of their own (lowest ids
    first), moved into a new batch claimed by `worker_id`."""
    due: list[Any] = [D.c.edition_id == edition_id, D.c.status == status]
    if status == DEFERRED:
        due.append(or_(D.c.not_before.is_(None), D.c.not_before <= now))
    variant = session.scalar(select(D.c.variant).where(*due).order_by(D.c.id).limit(1))
    if variant is None:
        return None
    ids = list(
        session.scalars(
            select(D.c.id)
            .where(*due, D.c.variant == variant)
            .order_by(D.c.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return None
    number = moves.new_batch(
        session, edition_id, variant=variant, status=CLAIMED, worker_id=worker_id, now=now
    )
    moves.retag(session, edition_id, number, ids, now, own_state=status)
    return _Picked(number, variant, 0, status, None)


def _rows(
    session: Session,
    edition_id: int,
    picked: _Picked,
    size: int,
    now: datetime,
    changed: Changed | None = None,
) -> tuple[ClaimedRows, int, int]:
    """The claimed batch's rows that follow it (at most `size`: the rest go to a new batch in
    its old state), minus the skipped; with how many were skipped and this try's number.
    With the change log (`changed`), rows whose subscribers did not change since the plan are
    taken as they are, without reading the subscribers."""
    connection = session.connection()
    params = {"e": edition_id, "b": picked.number, "now": now}
    if changed is not None:
        changed.refresh(connection)
        own = _OWN.fetch(connection, params)
        if not changed.touches(r[4] for r in own):
            claimed, attempt = _claimed(
                picked, _within(session, edition_id, picked, size, now, own)
            )
            return claimed, 0, attempt
    rows = _within(session, edition_id, picked, size, now, _ROWS.fetch(connection, params))
    gone: list[int] = []
    if rows:
        *_, mailable, texts = zip(*rows, strict=True)
        wants = _Wants(picked.variant)
        unwanted = {text for text in set(texts) if not wants(text)}
        if 0 in mailable or unwanted:  # someone unsubscribed or paused since the plan
            gone = [r[0] for r in rows if not r[4] or r[5] in unwanted]
            moves.move_ids(session, gone, CLAIMED, SKIPPED, now, error=moves.SKIP_REASON)
            rows = [r for r in rows if r[4] and r[5] not in unwanted]
    claimed, attempt = _claimed(picked, rows)
    return claimed, len(gone), attempt


def _claimed(picked: _Picked, rows: list[tuple[Any, ...]]) -> tuple[ClaimedRows, int]:
    """Rows that begin (id, email, public id, attempts) as the batch's columns, with this
    try's number (`attempts` counts a row's tries before it joined the batch)."""
    if not rows:
        return ClaimedRows(picked.variant, [], [], []), picked.attempts + 1
    ids, emails, public_ids, attempts, *_ = zip(*rows, strict=True)
    return ClaimedRows(picked.variant, ids, emails, public_ids), picked.attempts + max(attempts) + 1


def _within(
    session: Session,
    edition_id: int,
    picked: _Picked,
    size: int,
    now: datetime,
    rows: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """The first `size` rows; the rest handed back to a new batch."""
    if len(rows) > size:
        _hand_back(session, edition_id, picked, [r[0] for r in rows[size:]], now)
        return rows[:size]
    return rows


class _Wants:
    """Whether a subscriber still wants a batch of `variant`: the audience query's rule
    (subscribers.audience) applied to the sections frozen in the variant. Each stored
    `sections` text is decoded once, not once per row."""

    def __init__(self, variant: str) -> None:
        self.variant = tuple(variant.split("|")) if variant else ()
        self.seen: dict[str | None, bool] = {}

    def __call__(self, sections: str | None) -> bool:
        found = self.seen.get(sections)
        if found is None:
            chosen = None if sections is None else json.loads(sections)
            found = not self.variant or bool(sections_for(self.variant, chosen))
            self.seen[sections] = found
        return found


def _hand_back(
    session: Session, edition_id: int, picked: _Picked, rest: list[int], now: datetime
) -> None:
    """The rows a claim cannot take go to a new batch in the state the claimed one was in."""
    number = moves.new_batch(
        session,
        edition_id,
        variant=picked.variant,
        status=picked.was,
        attempts=picked.attempts,
        not_before=picked.not_before,
        now=now,
    )
    moves.retag(session, edition_id, number, rest, now)


def claimed_by(session: Session, edition_id: int) -> Counter[int]:
    """Rows per worker that claimed them, over the batches of a send (tests, benchmarks)."""
    rows = session.execute(
        select(B.c.worker_id, B.c.size).where(B.c.edition_id == edition_id, B.c.size > 0)
    )
    counts: Counter[int] = Counter()
    for worker, size in rows:
        if worker is not None:
            counts[worker] += size
    return counts
