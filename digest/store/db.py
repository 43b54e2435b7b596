"""Engine, sessions and migrations, all from Settings.

SQLite gets WAL mode, foreign keys and a busy timeout so that the web app and a send can share
the file. Migrations are Alembic's, run programmatically: no alembic.ini to lose.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError
from digest.store.groupcommit import Checkpoints

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed together or not at all."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def bulk_transaction(
    factory: sessionmaker[Session], *, known_references: bool = False
) -> Iterator[Session]:
    """`transaction`, for the writes of a send (its plan writes a million rows, its workers
    commit three times per batch): on SQLite the commit leaves the WAL to a checkpoint thread
    (store.groupcommit.Checkpoints) instead of copying it into the database file itself, with
    two fsyncs, whenever the WAL passed 1,000 pages. A plan's commit would otherwise wait for
    a quarter of a gigabyte to be copied, and the first batch after it too.

    `known_references`: every row the transaction writes refers to rows it has just read and
    holds (SQLite: the write lock is taken first), such as a plan's million ledger rows selected
    from `subscribers`; SQLite then skips the foreign-key lookups for them (a tenth of the
    plan's time). The setting is a connection's, made before its transaction and restored after.
    """
    engine = factory.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        with transaction(factory) as session:
            yield session
        return
    with engine.connect() as connection:  # held until the settings are restored
        raw = connection.connection.dbapi_connection
        assert raw is not None
        (usual,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
        raw.execute("PRAGMA wal_autocheckpoint=0")
        if known_references:  # before the transaction: inside one, SQLite ignores it
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with factory(bind=connection) as session, session.begin():
                yield session
        finally:
            raw.execute(f"PRAGMA wal_autocheckpoint={int(usual)}")
            if known_references:
                raw.execute("PRAGMA foreign_keys=ON")
    checkpoints(engine).wrote()


def driver_rows(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """The statement's rows as the database driver returns them: plain tuples, without the
    per-row processing of a SQLAlchemy result (a send reads a million rows; select only
    columns whose driver values are what you want: integers and text)."""
    result = connection.execute(statement, dict(params or {}))
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


_CHECKPOINTS: WeakKeyDictionary[Engine, Checkpoints] = WeakKeyDictionary()


def checkpoints(engine: Engine) -> Checkpoints:
    """The checkpoint thread of an SQLite engine (one per engine, started by writes)."""
    found = _CHECKPOINTS.get(engine)
    if found is None:
        found = _CHECKPOINTS[engine] = Checkpoints(engine)
    return found


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema up to date (idempotent)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise ConfigError(f"cannot open database {engine.url!r}: {exc.orig}") from None


def current_heads(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def is_up_to_date(engine: Engine) -> bool:
    """The database is at the head revisions of the migrations here. Read without Alembic
    (its import and a look at every migration cost a command a fifth of a second): the
    revisions are read from the migration files with `ast`, the database's from
    alembic_version."""
    heads = script_heads()
    try:
        with engine.connect() as conn:
            stored = {str(v) for (v,) in conn.exec_driver_sql(_STORED)}
    except OperationalError:  # no alembic_version table: a new database
        return False
    return bool(heads) and stored == heads


_STORED = "SELECT version_num FROM alembic_version"


@lru_cache(maxsize=1)
def script_heads() -> frozenset[str]:
    """The revisions no other migration revises: what `alembic heads` says."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        values = _assignments(path)
        revision, down = values.get("revision"), values.get("down_revision")
        if isinstance(revision, str):
            revisions.add(revision)
        if isinstance(down, str):
            revised.add(down)
        elif isinstance(down, tuple):
            revised.update(d for d in down if isinstance(d, str))
    return frozenset(revisions - revised)


def _assignments(path: Path) -> dict[str, Any]:
    """The module-level `name = literal` assignments of a migration file."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                with contextlib.suppress(ValueError):
                    found[target.id] = ast.literal_eval(node.value)
    return found


def open_database(url: str, *, auto_upgrade: bool | None = None) -> Engine:
    """An engine for `url`; an embedded SQLite database is migrated on first use.

    A server database (PostgreSQL) is shared by several processes, so it is only migrated by an
    explicit `digest db upgrade`; using an outdated one is a clear error.
    """
    engine = make_engine(url)
    if auto_upgrade is None:
        auto_upgrade = engine.dialect.name == "sqlite"
    try:
        if auto_upgrade:
            if not is_up_to_date(engine):
                upgrade(engine)
        elif not is_up_to_date(engine):
            raise ConfigError(
                f"database {engine.url.render_as_string(hide_password=True)} needs migrating: "
                "run `digest db upgrade`"
            )
    except OperationalError as exc:
        engine.dispose()
        raise ConfigError(
            f"cannot open database {engine.url.render_as_string(hide_password=True)}: {exc.orig}"
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return engine
