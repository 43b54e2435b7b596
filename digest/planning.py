"""Freezing the audience: one `planned` ledger row per recipient, before any provider call.

Streams in chunks, so a million subscribers never sit in memory at once, and writes them the
fastest way each database has (executemany on SQLite, COPY on PostgreSQL): planning is part of
every send's wall time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from digest.ledger import TABLE, variant_key
from digest.models import PLANNED
from subscribers.lifecycle import Audience

PLAN_CHUNK = 10_000
RUN = 1000  # the largest batch (SendGrid's 1000 personalizations)
PLAN_COLUMNS = (
    "edition_id",
    "subscriber_id",
    "email",
    "variant",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "public_id",
)


def plan(session: Session, edition_id: int, audience: Iterable[Audience], now: datetime) -> int:
    """Freeze the audience: one planned row per recipient, in the caller's one transaction.

    Streams in chunks, so a million subscribers never sit in memory at once, and writes them
    the fastest way each database has (executemany on SQLite, COPY on PostgreSQL): planning is
    part of every send's wall time. Rows are written in runs of one variant (`_runs`), so that
    a claimed batch lies on neighbouring pages however the variants interleave.
    """
    conn = session.connection()
    stamp = _bound(conn, now)
    keys: dict[tuple[str, ...], str] = {}
    planned = (
        (
            edition_id,
            a.subscriber_id,
            a.email,
            keys.get(a.sections) or keys.setdefault(a.sections, variant_key(a.sections)),
            PLANNED,
            0,
            stamp,
            stamp,
            a.public_id,
        )
        for a in audience
    )
    rows = _runs(planned)
    if conn.dialect.name == "postgresql":
        total = _copy(conn, rows)
        # Fresh statistics: with the new rows unknown to the planner, it may scan the table for
        # every claim instead of using the queue index.
        conn.exec_driver_sql("ANALYZE deliveries")
        return total
    total = 0
    for chunk in _chunks(rows, PLAN_CHUNK):
        if conn.dialect.name == "sqlite":
            placeholders = ", ".join("?" * len(PLAN_COLUMNS))
            sql = f"INSERT INTO deliveries ({', '.join(PLAN_COLUMNS)}) VALUES ({placeholders})"
            conn.exec_driver_sql(sql, chunk)
        else:
            conn.execute(insert(TABLE), [dict(zip(PLAN_COLUMNS, r, strict=True)) for r in chunk])
        total += len(chunk)
    return total


def _runs(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Rows regrouped into runs of up to RUN rows of one variant (column 3), in first-come
    order otherwise: with variants interleaved in subscriber order, a batch of one variant
    would otherwise touch a page per row. Holds at most RUN rows per variant in memory."""
    pending: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        run = pending.setdefault(row[3], [])
        run.append(row)
        if len(run) >= RUN:
            yield from run
            run.clear()
    for run in pending.values():
        yield from run


def _bound(conn: Connection, now: datetime) -> Any:
    """`now` as the driver takes it for a UTCDateTime column (bound once, not per row)."""
    if conn.dialect.name not in ("sqlite", "postgresql"):
        return now
    process = TABLE.c.created_at.type.bind_processor(conn.dialect)
    return process(now) if process else now


def _copy(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> int:
    raw: Any = conn.connection.driver_connection
    total = 0
    sql = f"COPY deliveries ({', '.join(PLAN_COLUMNS)}) FROM STDIN"
    # A chunk at a time: the audience query streams on this same connection, and it must not
    # fetch while a COPY is in progress.
    for chunk in _chunks(rows, PLAN_CHUNK):
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in chunk:
                copy.write_row(row)
        total += len(chunk)
    return total


def _chunks(items: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
