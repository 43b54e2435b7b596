"""Engine, sessions and migrations, all from Settings.

SQLite gets WAL mode, foreign keys and a busy timeout so that the web app and a send can share
the file. Migrations are Alembic's, run programmatically: no alembic.ini to lose.

Alembic is imported only when a migration runs. Every command opens the database, and asking
Alembic whether the schema is current costs ~0.2 s (it imports itself and every revision file);
comparing the `alembic_version` rows with the heads read from the revision files' own text costs
a millisecond (`schema_heads`; a test holds it equal to Alembic's answer).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Executable, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError
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
    """The revisions the database is at: the rows of Alembic's `alembic_version` table (none
    for a new database)."""
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" in str(exc.orig):  # no such table: nothing was migrated yet
            return set()
        raise


@cache
def schema_heads() -> frozenset[str]:
    """The newest revisions, read from the revision files' `revision` and `down_revision`
    assignments: a revision that no other names as its parent is a head."""
    parents: set[str] = set()
    revisions: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        values = _assignments(path.read_text(encoding="utf-8"))
        revisions.add(str(values["revision"]))
        down = values.get("down_revision")
        parents.update([down] if isinstance(down, str) else (down or ()))
    return frozenset(revisions - parents)


# `revision = "0002_gather"`, `down_revision: str | None = ("0001", "0002")`: Alembic's own
# template writes them one per line at the top of the file.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _assignments(source: str) -> dict[str, Any]:
    try:
        return {name: ast.literal_eval(value) for name, value in _ASSIGNMENT.findall(source)}
    except (ValueError, SyntaxError):  # written over several lines: read the module properly
        found: dict[str, Any] = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        found[target.id] = ast.literal_eval(node.value)
        return found


def is_up_to_date(engine: Engine) -> bool:
    return current_heads(engine) == schema_heads()


def open_database(url: str, *, auto_upgrade: bool | None = None) -> Engine:
    """An engine for `url`; an embedded SQLite database is migrated on first use.

    A server database (PostgreSQL) is shared by several processes, so it is only migrated by an
    explicit `digest db upgrade`; using an outdated one is a clear error.
    """
    engine = make_engine(url)
    if auto_upgrade is None:
        auto_upgrade = engine.dialect.name == "sqlite"
    try:
        if is_up_to_date(engine):
            return engine
        if auto_upgrade:
            upgrade(engine)
        else:
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
