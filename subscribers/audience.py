"""Who may be mailed an edition. Consent is enforced in this query and nowhere else.

Active (which only a confirmation or an operator's documented evidence can make someone),
confirmed, not paused, subscribed to at least one of the edition's sections. Not suppressed
follows from active: see the invariant in subscribers/suppression.py (a per-row suppression
lookup here would cost a query per recipient on a million-row send).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session

from subscribers.models import ACTIVE, Subscriber

STREAM_CHUNK = 5000


@dataclass(frozen=True)
class Audience:
    """One recipient as frozen at send start."""

    subscriber_id: int
    public_id: str
    email: str
    sections: tuple[str, ...]


def recipients_query(now: datetime) -> Select[int, str, str, list[str] | None]:
    """Everyone who consented to be mailed at `now`, in id order: (id, public_id, email,
    sections). `recipients_for` iterates it; the send planner runs it inside the database
    (digest.planning), with `sections_for` deciding who gets what from an edition."""
    return (
        select(Subscriber.id, Subscriber.public_id, Subscriber.email, Subscriber.sections)
        .where(Subscriber.status == ACTIVE, Subscriber.confirmed_at.is_not(None))
        .where(or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now))
        .order_by(Subscriber.id)
    )


def sections_for(wanted: tuple[str, ...], chosen: Sequence[str] | None) -> tuple[str, ...]:
    """What a subscriber who chose `chosen` (None: everything) gets from an edition with the
    sections `wanted`, in the edition's order; nothing means they are not mailed it."""
    return wanted if chosen is None else tuple(s for s in wanted if s in chosen)


def choices(session: Session, now: datetime) -> list[tuple[list[str] | None, int]]:
    """How many people `recipients_query` holds at `now`, per set of sections they chose
    (None: every section): the numbers of an edition's variants without reading every
    subscriber (a few groups instead of a million rows). The same rule decides who counts."""
    query = recipients_query(now).order_by(None).subquery()
    # JSON has no equality operator in PostgreSQL: group by its text, parsed back here.
    chosen = cast(query.c.sections, Text)
    found: dict[str, int] = {}
    for raw, n in session.execute(select(chosen, func.count()).group_by(chosen)):
        key = "null" if raw is None else str(raw)
        found[key] = found.get(key, 0) + int(n)
    return [(json.loads(raw), n) for raw, n in sorted(found.items())]


def recipients_for(session: Session, sections: Sequence[str], now: datetime) -> Iterator[Audience]:
    """Everyone who consented to this edition, streamed in id order so a million subscribers
    never sit in memory at once. `sections` on an Audience is the intersection: what this
    subscriber gets from this edition."""
    wanted = tuple(sections)
    query = recipients_query(now).execution_options(yield_per=STREAM_CHUNK)
    for sid, public_id, email, chosen in session.execute(query):
        mine = sections_for(wanted, chosen)
        if mine:
            yield Audience(sid, public_id, email, mine)
