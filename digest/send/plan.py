"""Freezing the audience: one ledger row per recipient and the batches they will go out in, before
any provider call, written by the database itself (no row passes through Python).

Who is mailed is decided by `subscribers.lifecycle`: `recipients_query` (consent) runs inside
the INSERT ... SELECT, and `sections_for` (what each subscriber gets from this edition) is applied
to the few distinct `sections` values there are, turned into a CASE. Each variant's rows are
numbered in subscriber order and cut into batches of `batch_size`; a batch's number interleaves
the variants (batch k of variant v is k * variants + v), so numbers never collide whatever the
counts, and the first batches of a send cover every variant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, case, cast, func, insert, literal, select
from sqlalchemy.orm import Session

from digest.ledger.moves import B, D, variant_key
from digest.store.models import PLANNED
from subscribers.lifecycle import recipients_query, sections_for

# The largest batch any backend takes (SendGrid: 1000 personalizations per request).
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Plan:
    recipients: int
    batches: int  # batch numbers used: 0 .. batches - 1 (with gaps between variants)


def plan(
    session: Session, edition_id: int, sections: list[str], now: datetime, batch_size: int
) -> Plan:
    """Freeze the audience of an edition with `sections`, in the caller's transaction."""
    conn = session.connection()
    audience = recipients_query(now).order_by(None).subquery("audience")
    chosen = cast(audience.c.sections, Text)
    variants = _variants(conn, audience, chosen, tuple(sections))
    if not variants:
        return Plan(0, 0)
    width = len(variants)

    def by_variant(value: Any) -> Any:  # the variant's `value`, from the subscriber's sections
        whens = [
            (audience.c.sections.is_(None) if text is None else chosen == text, value(i, key))
            for i, (key, texts) in enumerate(variants)
            for text in texts
        ]
        return case(*whens, else_=None)

    index = by_variant(lambda i, key: literal(i))
    position = func.row_number().over(partition_by=index, order_by=audience.c.id) - 1
    rows = (
        select(
            literal(edition_id),
            audience.c.id,
            audience.c.email,
            by_variant(lambda i, key: literal(key)),
            (position // batch_size) * width + index,
            literal(0),
            literal(now, D.c.created_at.type),
            literal(now, D.c.updated_at.type),
            audience.c.public_id,
        )
        .where(index.is_not(None))
        .order_by(index, audience.c.id)
    )
    columns = ["edition_id", "subscriber_id", "email", "variant", "batch_id", "attempts"]
    columns += ["created_at", "updated_at", "public_id"]
    conn.execute(insert(D).from_select(columns, rows))
    return _batches(conn, edition_id, [key for key, _ in variants], now)


def _variants(
    conn: Connection, audience: Any, chosen: Any, wanted: tuple[str, ...]
) -> list[tuple[str, list[str | None]]]:
    """The variants of this edition in the order of their first subscriber, each with the
    `sections` texts (as stored; None for SQL NULL) that lead to it."""
    found = conn.execute(select(chosen, func.min(audience.c.id)).group_by(chosen)).all()
    variants: dict[str, tuple[int, list[str | None]]] = {}
    for text, first in found:
        mine = sections_for(wanted, None if text is None else json.loads(text))
        if mine:
            key = variant_key(mine)
            earliest, texts = variants.get(key, (first, []))
            variants[key] = (min(earliest, first), [*texts, text])
    ordered = sorted(variants.items(), key=lambda item: item[1][0])
    return [(key, texts) for key, (_, texts) in ordered]


def _batches(conn: Connection, edition_id: int, variants: list[str], now: datetime) -> Plan:
    """One `send_batches` row per batch number the rows were given, sized by counting them
    (through ix_deliveries_batch: no table reads)."""
    width = len(variants)
    sizes = conn.execute(
        select(D.c.batch_id, func.count())
        .where(D.c.edition_id == edition_id)
        .group_by(D.c.batch_id)
        .order_by(D.c.batch_id)
    ).all()
    stamp = {"created_at": now, "updated_at": now}
    conn.execute(
        insert(B),
        [
            {
                "edition_id": edition_id,
                "id": number,
                "variant": variants[number % width],
                "status": PLANNED,
                "size": size,
                "attempts": 0,
                **stamp,
            }
            for number, size in sizes
        ],
    )
    if conn.dialect.name == "postgresql":
        # Fresh statistics: with a million new rows unknown to the planner, it may scan the
        # table for every claim instead of using ix_deliveries_batch.
        conn.exec_driver_sql("ANALYZE deliveries")
        conn.exec_driver_sql("ANALYZE send_batches")
    return Plan(sum(size for _, size in sizes), sizes[-1][0] + 1 if sizes else 0)
