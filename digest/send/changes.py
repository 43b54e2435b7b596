"""The subscribers changed since a send's audience was frozen, for its claims.

A claim must skip whoever may no longer be mailed: unsubscribed, paused or no longer taking any
section of the batch's variant since the plan (send/claims.py). Reading each row's subscriber
for that cost a third of a claim, and with 31 variants a batch's subscribers lie on 31 times as
many pages. On SQLite, triggers note every subscriber whose status, pause or sections change,
and every erased one, in `subscriber_changes` (migration 0013), whatever writes the change. A
worker keeps the ids noted since the plan (reading only the new ones at each claim, in the
claim's own transaction) and a claim joins its rows with their subscribers only when one of
them is among those ids. SQLite writes one transaction at a time, so `seq` grows in commit
order and nothing noted is ever passed over. PostgreSQL joins every claim (its sequences are
not handed out in commit order); so does a send planned before the log.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, delete, func, select, text
from sqlalchemy.orm import Session

from digest.store.models import SEND_FINISHED, EditionSend, SubscriberChange
from subscribers.fastsql import Prepared

C = SubscriberChange.__table__


# The triggers migration 0013 made: without both, nothing is noted and every claim must join.
TRIGGERS = ("subscriber_changes_on_update", "subscriber_changes_on_delete")


def mark(session: Session) -> int | None:
    """The log's last `seq` now (0 when empty), in the plan's transaction; None on a database
    without the triggers (PostgreSQL, or a SQLite file that lost them): its claims join every
    row. Entries no unfinished send needs any more are pruned."""
    if session.get_bind().dialect.name != "sqlite" or not _triggers_present(session):
        return None
    last = session.scalar(select(func.coalesce(func.max(SubscriberChange.seq), 0)))
    oldest = session.scalar(
        select(func.min(EditionSend.changes_from)).where(EditionSend.state != SEND_FINISHED)
    )
    floor = last if oldest is None else min(oldest, last)
    session.execute(delete(SubscriberChange).where(SubscriberChange.seq <= floor))
    return int(last or 0)


_SINCE = Prepared(
    select(C.c.seq, C.c.subscriber_id).where(C.c.seq > bindparam("last")).order_by(C.c.seq),
    ["last"],
)


def _triggers_present(session: Session) -> bool:
    names = session.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'subscribers'")
    ).scalars()
    return set(TRIGGERS) <= set(names)


class Changed:
    """The subscribers changed since a send's plan, as one worker has read them so far."""

    def __init__(self, since: int) -> None:
        self.last = since
        self.ids: set[int] = set()

    @classmethod
    def of_send(cls, session: Session, edition_id: int) -> Changed | None:
        """The log for a send's claims; None when they must join (PostgreSQL, an old send)."""
        if session.get_bind().dialect.name != "sqlite":
            return None
        since = session.scalar(
            select(EditionSend.changes_from).where(EditionSend.edition_id == edition_id)
        )
        return None if since is None else cls(since)

    def refresh(self, connection: Connection) -> None:
        """Add the ids noted since the last read (in the claim's transaction)."""
        rows = _SINCE.execute(connection, {"last": self.last}).all()
        for seq, subscriber_id in rows:
            self.ids.add(subscriber_id)
            self.last = seq

    def touches(self, subscriber_ids: Iterable[int | None]) -> bool:
        """Some of these subscribers changed, or was erased (its ledger rows lost the id)."""
        ids = self.ids
        return any(s is None or s in ids for s in subscriber_ids)
