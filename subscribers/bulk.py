"""Bulk inserts for the importer, at the database driver's speed.

`session.execute(insert(table), rows)` runs every value of every row through SQLAlchemy's
generic parameter machinery; for a 100,000-row import that costs more than SQLite's own work
(measured: 3.0 s against 1.3 s per 100,000 subscribers). Here each column's bind processor is
looked up once (the same processors SQLAlchemy applies: UTCDateTime, JSON, the dialect's date
format), applied only to the columns that have one, and the rows go to the driver's
executemany as plain tuples or dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany, inside the session's
    transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup or []) if compiled.positional else keys
    processors = [
        (i, process)
        for i, key in enumerate(order)
        if (process := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    values = [_processed(itemgetter(*order)(row), processors) for row in rows]
    params: list[Any] = (
        values if compiled.positional else [dict(zip(order, v, strict=True)) for v in values]
    )
    connection.exec_driver_sql(str(compiled), params)


def _processed(raw: Any, processors: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    row = list(raw) if isinstance(raw, tuple) else [raw]
    for i, process in processors:
        row[i] = process(row[i])
    return tuple(row)
