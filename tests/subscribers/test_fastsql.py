"""The importer's fast paths write exactly what SQLAlchemy's own paths write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, Engine, bindparam, create_engine, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

import digest.store.models  # noqa: F401  (the shared metadata needs every table)
from subscribers.fastsql import Prepared, insert_rows
from subscribers.importer import _table
from subscribers.models import Base, Subscriber, UTCDateTime

aware = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from([timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]),
)


@given(aware)
def test_utc_datetimes_are_stored_in_sqlalchemys_own_sqlite_format(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    reference = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and reference is not None
    assert ours(value) == reference(value.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_datetime_is_still_refused() -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2026, 1, 1))


def rows(now: datetime) -> list[dict[str, object]]:
    return [
        {
            "public_id": f"{i:032x}",
            "email": f"r{i}@example.com",
            "name": None if i % 2 else f"Reader {i}",
            "status": "active",
            "sections": None if i % 3 else ["Asia", "Europe"],
            "created_at": now - timedelta(days=i),
            "updated_at": now,
            "confirmed_at": now,
            "unsubscribed_at": None,
            "requested_at": None,
        }
        for i in range(5)
    ]


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT * FROM subscribers ORDER BY email")).all()
    with Session(engine) as session:
        loaded = session.execute(
            select(Subscriber.email, Subscriber.sections, Subscriber.created_at).order_by(
                Subscriber.email
            )
        ).all()
    return [tuple(r[1:]) for r in raw] + [tuple(r) for r in loaded]


def compare(make_engine: Iterator[Engine]) -> None:
    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    fast, slow = next(make_engine), next(make_engine)
    with Session(fast) as session, session.begin():
        insert_rows(session.connection(), _table(Subscriber), rows(now))
    with Session(slow) as session, session.begin():
        session.execute(insert(_table(Subscriber)), rows(now))
    assert stored(fast) == stored(slow)


def test_bulk_insert_writes_what_sqlalchemy_writes_on_sqlite() -> None:
    def engines() -> Iterator[Engine]:
        while True:
            engine = create_engine("sqlite://")
            Base.metadata.create_all(engine)
            yield engine

    compare(engines())


@pytest.mark.postgres
def test_bulk_insert_writes_what_sqlalchemy_writes_on_postgresql(postgres_url: str) -> None:
    # Raw SQL (what insert_rows sends) finds the tables through the search path.
    engine = create_engine(postgres_url, connect_args={"options": "-csearch_path=bulk_test"})

    def engines() -> Iterator[Engine]:
        while True:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS bulk_test CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA bulk_test")
            Base.metadata.create_all(engine)
            yield engine

    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    try:
        fast = next(engines())
        with Session(fast) as session, session.begin():
            insert_rows(session.connection(), _table(Subscriber), rows(now))
        fast_rows = stored(fast)
        slow = next(engines())
        with Session(slow) as session, session.begin():
            session.execute(insert(_table(Subscriber)), rows(now))
        assert fast_rows == stored(slow)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS bulk_test CASCADE")
        engine.dispose()


# Keys in an order of their own, and one value fixed in the statement: the bound path must
# put each value where the SQL wants it, on either paramstyle (qmark, pyformat).
BOUND_KEYS = [
    "updated_at",
    "email",
    "sections",
    "public_id",
    "name",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "requested_at",
]


def bound_insert(engine: Engine, now: datetime) -> None:
    statement = Prepared(insert(_table(Subscriber)).values(status="active"), BOUND_KEYS)
    with Session(engine) as session, session.begin():
        connection = session.connection()
        process = statement.processors(connection)
        statement.executemany_bound(
            connection,
            [tuple(process[key](row[key]) for key in BOUND_KEYS) for row in rows(now)],
        )
        found = Prepared(
            select(Subscriber.email, Subscriber.name)
            .where(Subscriber.email.in_([bindparam("a"), bindparam("b")]))
            .order_by(Subscriber.email),
            ["a", "b"],
        ).fetch_bound(connection, ["r1@example.com", "r2@example.com"])
    assert found == [("r1@example.com", None), ("r2@example.com", "Reader 2")]


def test_bound_rows_write_what_sqlalchemy_writes_on_sqlite() -> None:
    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    fast, slow = create_engine("sqlite://"), create_engine("sqlite://")
    for engine in (fast, slow):
        Base.metadata.create_all(engine)
    bound_insert(fast, now)
    with Session(slow) as session, session.begin():
        session.execute(insert(_table(Subscriber)), rows(now))
    assert stored(fast) == stored(slow)


@pytest.mark.postgres
def test_bound_rows_write_what_sqlalchemy_writes_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url, connect_args={"options": "-csearch_path=bound_test"})
    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)

    def fresh() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS bound_test CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA bound_test")
        Base.metadata.create_all(engine)

    try:
        fresh()
        bound_insert(engine, now)
        fast_rows = stored(engine)
        fresh()
        with Session(engine) as session, session.begin():
            session.execute(insert(_table(Subscriber)), rows(now))
        assert fast_rows == stored(engine)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS bound_test CASCADE")
        engine.dispose()
