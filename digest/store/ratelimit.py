"""Rate limits kept in the database, so that they hold across every `digest serve` process (and
machine) behind one proxy: a limit counted in one process's memory lets N processes allow N
times as much.

The API is a `Limit` (a name, how many, per how long) and a key (an IP, an IPv6 /64, an
account): `hit` takes one request from the key's allowance, `peek` only looks (a login counts
its failures, but must refuse a locked-out key before checking the password), `clear` forgets a
key. Each answers the seconds to wait: 0.0 means allowed.

The algorithm is GCRA, a token bucket of `limit` requests refilled evenly over `window`, held in
one number per key: the "theoretical arrival time" (tat). A hit at `t` is allowed when
max(tat, t) - t <= window - window/limit, and then moves tat on by window/limit. One upsert
decides and counts (INSERT ... ON CONFLICT DO UPDATE ... RETURNING, on SQLite and PostgreSQL
alike), so two processes hitting the same key at once cannot both take its last request.

Keys are stored as a SHA-256 of the caller's key (an IP address is personal data; the table
needs only to tell keys apart). A key at rest (tat in the past) is the same as no row: such rows
are purged now and then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Float, case, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from digest.store.models import RateLimit

# Rows at rest are deleted once per this many hits of one Limiter (cheap: an indexed range).
PURGE_EVERY = 500


@dataclass(frozen=True)
class Limit:
    """At most `limit` requests per `window` per key, refilled evenly (a burst of `limit`)."""

    name: str
    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= timedelta(0):
            raise ValueError(f"rate limit {self.name}: limit must be >= 1 and window positive")

    @property
    def interval(self) -> float:
        """Seconds one request uses up."""
        return self.window.total_seconds() / self.limit

    @property
    def tolerance(self) -> float:
        """How far ahead of now tat may run while a request is still allowed."""
        return self.window.total_seconds() - self.interval


def stored_key(limit: Limit, key: str) -> str:
    return f"{limit.name[:40]}:{hashlib.sha256(key.encode()).hexdigest()[:64]}"


def _upsert(connection: Connection) -> Callable[..., object]:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def hit(connection: Connection, limit: Limit, key: str, now: datetime) -> float:
    """Take one request from `key`'s allowance: 0.0 if allowed, else the seconds to wait."""
    t = now.timestamp()
    table = RateLimit.__table__
    base = case((table.c.tat > t, table.c.tat), else_=literal(t, Float))
    ok = base - t <= limit.tolerance
    insert = _upsert(connection)(table)
    statement = (
        insert.values(key=stored_key(limit, key), tat=t + limit.interval, allowed=True)  # type: ignore[attr-defined]
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"tat": case((ok, base + limit.interval), else_=table.c.tat), "allowed": ok},
        )
        .returning(table.c.tat, table.c.allowed)
    )
    tat, allowed = connection.execute(statement).one()
    if allowed:
        return 0.0
    return max(float(tat), t) - t - limit.tolerance


def peek(connection: Connection, limit: Limit, key: str, now: datetime) -> float:
    """What `hit` would answer, without counting a request."""
    t = now.timestamp()
    tat = connection.scalar(select(RateLimit.tat).where(RateLimit.key == stored_key(limit, key)))
    if tat is None:
        return 0.0
    over = max(float(tat), t) - t - limit.tolerance
    return over if over > 0 else 0.0


def clear(connection: Connection, limit: Limit, key: str) -> None:
    """Forget `key` (a successful login clears its account's failures)."""
    connection.execute(delete(RateLimit).where(RateLimit.key == stored_key(limit, key)))


def purge(connection: Connection, now: datetime) -> int:
    """Delete the rows at rest: their keys have their whole allowance back."""
    result = connection.execute(delete(RateLimit).where(RateLimit.tat < now.timestamp()))
    return int(getattr(result, "rowcount", 0) or 0)


class Limiter:
    """The functions above on an engine, each in a transaction of its own. `lock` serialises
    writers where the database has one (the web app's SQLite write lock)."""

    def __init__(self, engine: Engine, lock: AbstractContextManager[object] | None = None) -> None:
        self.engine = engine
        self.lock = lock if lock is not None else nullcontext()
        self._hits = 0

    def hit(self, limit: Limit, key: str, now: datetime) -> float:
        with self.lock, self.engine.begin() as connection:
            wait = hit(connection, limit, key, now)
            self._hits += 1
            if self._hits % PURGE_EVERY == 0:
                purge(connection, now)
            return wait

    def peek(self, limit: Limit, key: str, now: datetime) -> float:
        with self.engine.connect() as connection:
            return peek(connection, limit, key, now)

    def clear(self, limit: Limit, key: str) -> None:
        with self.lock, self.engine.begin() as connection:
            clear(connection, limit, key)

    def bound(self, limit: Limit) -> BoundLimit:
        return BoundLimit(self, limit)


@dataclass(frozen=True)
class BoundLimit:
    """One limit of a Limiter: `hit(key, now)`, as the web guards call it."""

    limiter: Limiter
    limit: Limit

    def hit(self, key: str, now: datetime) -> float:
        return self.limiter.hit(self.limit, key, now)

    def peek(self, key: str, now: datetime) -> float:
        return self.limiter.peek(self.limit, key, now)
