"""Freezing the audience: one ledger row per recipient and the batches they will go out in, before
any provider call.

Who is mailed is decided by `subscribers.lifecycle`: `recipients_query` (consent) and
`sections_for` (what each subscriber gets from this edition). Planning is two passes over that
query, in one transaction:

1. `survey` reads only (id, sections) of the audience, in subscriber order: the variants (each
   distinct stored `sections` text is decided once), their counts (preflight checks each
   variant that has readers), and every `batch_size`-th subscriber of each variant, where a
   batch starts. A batch's number interleaves the variants (batch k of variant v is
   k * variants + v), so numbers never collide whatever the counts, and the first batches of a
   send cover every variant.
2. `freeze` writes the rows with one INSERT ... SELECT the database runs (no row passes through
   Python), joined with two small temporary tables: the `sections` texts with their variant,
   and the batch starts, from which each row's batch is looked up by its subscriber id. Rows
   are written in subscriber order, as the unique (edition, subscriber) index wants them; no
   window function sorts the audience by variant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from digest.ledger.moves import B, D, variant_key
from digest.store.models import PLANNED
from subscribers.fastsql import Prepared
from subscribers.lifecycle import recipients_query, sections_for

# The largest batch any backend takes (SendGrid: 1000 personalizations per request).
BATCH_SIZE = 1000
# Rows read at a time by the survey.
_CHUNK = 10_000
# The stored `sections` value of a subscriber who takes every section (SQL NULL), in the
# temporary table's text column (no JSON value is the empty string).
_EVERYTHING = ""


@dataclass(frozen=True)
class Plan:
    recipients: int
    batches: int  # batch numbers used: 0 .. batches - 1 (with gaps between variants)


@dataclass
class Audience:
    """Who an edition reaches now, from one pass over the audience query."""

    batch_size: int
    # Variant keys (the sections a reader gets, joined by "|"), in the order of their first
    # subscriber, with their readers.
    counts: dict[str, int] = field(default_factory=dict)
    # Each stored `sections` text that leads to a variant ("" for NULL): the variant's index.
    texts: dict[str, int] = field(default_factory=dict)
    # Where each batch starts: (variant index, first subscriber id, batch number).
    starts: list[tuple[int, int, int]] = field(default_factory=list)
    # Some subscriber of the audience query gets nothing of this edition (none of its sections).
    passed_over: bool = False

    @property
    def variants(self) -> list[str]:
        return list(self.counts)

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


# The two temporary tables `freeze` joins (created, filled and dropped in its transaction).
_TEMP = MetaData()
_VARIANTS = Table(
    "plan_variants",
    _TEMP,
    Column("text", Text, primary_key=True),
    Column("v", Integer, nullable=False),
    Column("variant", String(1000), nullable=False),
    prefixes=["TEMPORARY"],
)
_STARTS = Table(
    "plan_starts",
    _TEMP,
    Column("v", Integer, primary_key=True),
    Column("lo", Integer, primary_key=True),
    Column("batch", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


def survey(session: Session, sections: Sequence[str], now: datetime, batch_size: int) -> Audience:
    """The audience of an edition with `sections` at `now`, per variant, and where its batches
    of `batch_size` start (read in the caller's transaction; nothing is written)."""
    wanted = tuple(sections)
    audience = recipients_query(now).subquery("audience")
    conn = session.connection()
    rows = select(audience.c.id, cast(audience.c.sections, Text)).order_by(audience.c.id)
    found = Audience(batch_size)
    decided: dict[str | None, int | None] = {}  # stored text -> variant index (None: not mailed)
    seen: list[int] = []  # per variant index: readers so far
    keys: dict[str, int] = {}
    starts: list[tuple[int, int, int]] = []  # (variant index, subscriber id, k-th batch of it)
    for sid, stored in _raw_rows(conn, rows):
        index = decided.get(stored, -1)
        if index == -1:
            index = decided[stored] = _variant_of(wanted, stored, keys, seen, found)
        if index is None:
            continue
        position = seen[index]
        seen[index] = position + 1
        if position % batch_size == 0:
            starts.append((index, sid, position // batch_size))
    width = len(keys)  # known once every variant was met
    found.starts = [(index, sid, k * width + index) for index, sid, k in starts]
    found.counts = {key: seen[index] for key, index in keys.items()}
    return found


def _variant_of(
    wanted: tuple[str, ...],
    text: str | None,
    keys: dict[str, int],
    seen: list[int],
    found: Audience,
) -> int | None:
    """The index of the variant a stored `sections` text leads to (a new variant gets the next
    one); None when its subscribers get nothing of this edition."""
    mine = sections_for(wanted, None if text is None else json.loads(text))
    if not mine:
        found.passed_over = True
        return None
    key = variant_key(mine)
    if key not in keys:
        keys[key] = len(keys)
        seen.append(0)
    found.texts[_EVERYTHING if text is None else text] = keys[key]
    return keys[key]


def _raw_rows(conn: Connection, statement: Any) -> Iterator[tuple[Any, ...]]:
    """The statement's rows as the driver returns them (plain tuples, no per-row processing:
    the survey reads a million of them), a chunk at a time. (Not `stream_results`: its
    result reads ahead of the driver's cursor.)"""
    result = conn.execute(statement)
    try:
        cursor = result.cursor
        while chunk := cursor.fetchmany(_CHUNK):
            yield from chunk
    finally:
        result.close()


def plan(
    session: Session, edition_id: int, sections: list[str], now: datetime, batch_size: int
) -> Plan:
    """Freeze the audience of an edition with `sections`, in the caller's transaction."""
    return freeze(session, edition_id, survey(session, sections, now, batch_size), now)


def freeze(session: Session, edition_id: int, audience: Audience, now: datetime) -> Plan:
    """Write the ledger rows and batches of a surveyed audience (same transaction as the
    survey, so the audience is the one surveyed)."""
    if not audience.counts:
        return Plan(0, 0)
    conn = session.connection()
    if len(audience.counts) == 1:
        return _batches(
            conn, edition_id, audience.variants, now, _freeze_one(conn, edition_id, audience, now)
        )
    _fill_temporary(conn, audience)
    people = recipients_query(now).order_by(None).subquery("audience")
    batch = (  # the batch whose start is the row's subscriber id or the last one before it
        select(_STARTS.c.batch)
        .where(_STARTS.c.v == _VARIANTS.c.v, _STARTS.c.lo <= people.c.id)
        .order_by(_STARTS.c.lo.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = _ledger_rows(people, edition_id, _VARIANTS.c.variant, batch, now)
    rows = rows.select_from(_with_variants(people)).order_by(people.c.id)
    conn.execute(insert(D).from_select(_COLUMNS, rows))
    _drop_temporary(conn)
    return _batches(conn, edition_id, audience.variants, now)


_COLUMNS = ["edition_id", "subscriber_id", "email", "variant", "batch_id", "attempts"]
_COLUMNS += ["created_at", "updated_at", "public_id"]
_LAST_ID = 2**31 - 1  # the largest an INTEGER subscriber id can be (PostgreSQL's int4)


def _freeze_one(
    conn: Connection, edition_id: int, audience: Audience, now: datetime
) -> list[tuple[int, int]]:
    """One variant: every batch is the audience between two subscriber ids, so each is one
    INSERT ... SELECT over that range of `subscribers` with its number written in, and no row
    looks its batch up (with the count that sized the batches afterwards, a third of the
    plan's time); a batch's size is the rows it wrote. When the survey passed someone over
    (none of the edition's sections), the stored texts that lead to the variant (the temporary
    table) decide who is in; else everyone the audience query finds is."""
    people = recipients_query(now).order_by(None).subquery("audience")
    variant: Any = literal(audience.variants[0])
    source: Any = people
    if audience.passed_over:
        _fill_temporary(conn, audience)
        variant, source = _VARIANTS.c.variant, _with_variants(people)
    batch = bindparam("batch", type_=Integer)
    rows = (
        _ledger_rows(people, edition_id, variant, batch, now)
        .select_from(source)
        .where(people.c.id.between(bindparam("lo", type_=Integer), bindparam("hi", type_=Integer)))
        .order_by(people.c.id)
    )
    statement = Prepared(insert(D).from_select(_COLUMNS, rows), ["batch", "lo", "hi"])
    starts = sorted((lo, batch) for _, lo, batch in audience.starts)
    ends = [lo - 1 for lo, _ in starts[1:]] + [_LAST_ID]
    sizes = [
        (batch, statement.execute(conn, {"batch": batch, "lo": lo, "hi": hi}).rowcount)
        for (lo, batch), hi in zip(starts, ends, strict=True)
    ]
    if audience.passed_over:
        _drop_temporary(conn)
    return sizes


def _ledger_rows(people: Any, edition_id: int, variant: Any, batch: Any, now: datetime) -> Any:
    """The SELECT of the ledger rows (`_COLUMNS`) from the audience subquery `people`."""
    return select(
        literal(edition_id),
        people.c.id,
        people.c.email,
        variant,
        batch,
        literal(0),
        literal(now, D.c.created_at.type),
        literal(now, D.c.updated_at.type),
        people.c.public_id,
    )


def _with_variants(people: Any) -> Any:
    """The audience joined with the stored texts that lead to a variant (the temporary table):
    whoever gets nothing of the edition drops out here."""
    chosen = func.coalesce(cast(people.c.sections, Text), _EVERYTHING)
    return people.join(_VARIANTS, _VARIANTS.c.text == chosen)


def _fill_temporary(conn: Connection, audience: Audience) -> None:
    _drop_temporary(conn)
    _TEMP.create_all(conn)
    variants = audience.variants
    conn.execute(
        insert(_VARIANTS),
        [{"text": text, "v": v, "variant": variants[v]} for text, v in audience.texts.items()],
    )
    conn.execute(
        insert(_STARTS), [{"v": v, "lo": lo, "batch": batch} for v, lo, batch in audience.starts]
    )
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE plan_variants")
        conn.exec_driver_sql("ANALYZE plan_starts")


def _drop_temporary(conn: Connection) -> None:
    _TEMP.drop_all(conn, checkfirst=True)


def _batches(
    conn: Connection,
    edition_id: int,
    variants: list[str],
    now: datetime,
    sizes: list[tuple[int, int]] | None = None,
) -> Plan:
    """One `send_batches` row per batch number the rows were given, sized by what wrote them
    or else by counting them (through ix_deliveries_batch: no table reads)."""
    width = len(variants)
    if sizes is None:
        sizes = [
            (number, size)
            for number, size in conn.execute(
                select(D.c.batch_id, func.count())
                .where(D.c.edition_id == edition_id)
                .group_by(D.c.batch_id)
                .order_by(D.c.batch_id)
            )
        ]
    sizes = [(number, size) for number, size in sizes if size]
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
