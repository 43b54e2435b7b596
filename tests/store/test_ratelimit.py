"""The shared rate limits (digest/store/ratelimit.py) on SQLite and PostgreSQL: a bucket of
`limit` refilled evenly over `window`, counted in the database so that two engines (two
processes) share one allowance, and two hits racing for the last request cannot both win."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from digest.store.models import RateLimit
from digest.store.ratelimit import Limit, Limiter, stored_key
from tests.send_helpers import empty_tables

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
THREE_AN_HOUR = Limit("test", 3, timedelta(hours=1))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield request.getfixturevalue("engine")
        return
    engine = request.getfixturevalue("_pg_engine")
    empty_tables(engine)
    yield engine


def test_a_key_gets_its_burst_then_waits_for_the_refill(db: Engine) -> None:
    limiter = Limiter(db)
    waits = [limiter.hit(THREE_AN_HOUR, "192.0.2.1", NOW) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(20 * 60)  # one request comes back every 20 minutes
    assert limiter.hit(THREE_AN_HOUR, "192.0.2.1", NOW + timedelta(minutes=19)) > 0
    assert limiter.hit(THREE_AN_HOUR, "192.0.2.1", NOW + timedelta(minutes=20)) == 0.0
    assert limiter.hit(THREE_AN_HOUR, "192.0.2.1", NOW + timedelta(minutes=20)) > 0


def test_a_refused_hit_does_not_push_the_wait_further(db: Engine) -> None:
    limiter = Limiter(db)
    one = Limit("one", 1, timedelta(minutes=10))
    assert limiter.hit(one, "k", NOW) == 0.0
    waits = [limiter.hit(one, "k", NOW + timedelta(minutes=1)) for _ in range(5)]
    assert waits == [pytest.approx(9 * 60)] * 5
    assert limiter.hit(one, "k", NOW + timedelta(minutes=10)) == 0.0


def test_keys_and_limits_are_counted_apart(db: Engine) -> None:
    limiter = Limiter(db)
    one = Limit("one", 1, timedelta(hours=1))
    other = Limit("other", 1, timedelta(hours=1))
    assert limiter.hit(one, "a", NOW) == 0.0
    assert limiter.hit(one, "b", NOW) == 0.0
    assert limiter.hit(other, "a", NOW) == 0.0
    assert limiter.hit(one, "a", NOW) > 0


def test_peek_counts_nothing_and_clear_forgets(db: Engine) -> None:
    limiter = Limiter(db)
    one = Limit("one", 1, timedelta(hours=1))
    assert limiter.peek(one, "a", NOW) == 0.0
    assert limiter.peek(one, "a", NOW) == 0.0
    assert limiter.hit(one, "a", NOW) == 0.0
    assert limiter.peek(one, "a", NOW) == pytest.approx(3600)
    limiter.clear(one, "a")
    assert limiter.peek(one, "a", NOW) == 0.0


def test_two_engines_on_one_database_share_the_allowance(db: Engine) -> None:
    """Two processes behind one proxy: each has its own engine and connection pool."""
    from digest.store.db import make_engine

    second = make_engine(db.url.render_as_string(hide_password=False), **_same_schema(db))
    try:
        a, b = Limiter(db), Limiter(second)
        waits = [limiter.hit(THREE_AN_HOUR, "ip", NOW) for limiter in (a, b, a, b)]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        second.dispose()


def test_racing_hits_never_both_take_the_last_request(db: Engine) -> None:
    """Eight threads, eight connections, a limit of five: exactly five are allowed."""
    limiter = Limiter(db)
    five = Limit("race", 5, timedelta(hours=1))
    start = threading.Barrier(8)
    waits: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        wait = limiter.hit(five, "ip", NOW)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(w == 0.0 for w in waits) == [False] * 3 + [True] * 5


def test_keys_are_stored_hashed_and_rows_at_rest_are_purged(db: Engine) -> None:
    limiter = Limiter(db)
    limiter.hit(THREE_AN_HOUR, "198.51.100.7", NOW)
    with db.connect() as conn:
        (key,) = conn.scalars(select(RateLimit.key)).all()
    assert "198.51.100.7" not in key and key == stored_key(THREE_AN_HOUR, "198.51.100.7")
    from digest.store.ratelimit import purge

    with db.begin() as conn:
        assert purge(conn, NOW) == 0  # still counting
        assert purge(conn, NOW + timedelta(hours=1)) == 1
        assert conn.scalar(select(func.count()).select_from(RateLimit)) == 0


def test_a_limit_must_allow_something() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        Limit("x", 0, timedelta(hours=1))


def _same_schema(engine: Engine) -> dict[str, object]:
    """A PostgreSQL test schema is chosen by search_path in connect_args: keep it."""
    if engine.dialect.name != "postgresql":
        return {}
    return {"connect_args": {"options": _search_path(engine)}}


def _search_path(engine: Engine) -> str:
    with engine.connect() as conn:
        return f"-csearch_path={conn.exec_driver_sql('SHOW search_path').scalar()}"
