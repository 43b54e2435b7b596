"""Shared fixtures: a frozen `now`, settings on a temporary database, services from make test,
and `ledger_db`, which runs a delivery test on SQLite and on PostgreSQL (a schema of its own per
test module, emptied between tests; the PostgreSQL half skips, or fails under CI=true, without a
server). It lives here because both tests/ledger and tests/send use it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings, load_settings
from digest.store.db import make_engine, session_factory, upgrade
from tests.send_helpers import LedgerDb, empty_tables, make_edition, postgres_schema
from tests.services_env import services

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"
# The demo's cut-off: Friday 2026-11-20 09:00 in New York.
DEMO_NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
TEST_SECRET = "test-secret-key-0123456789abcdef"


SERVICES = services()

# Property tests: the same examples on every CI run, so a red build is the code's doing, never
# the luck of the draw or a busy machine (derandomized, no example database, no deadline, no
# too_slow; print_blob says how to replay a failure). Locally they keep drawing new examples and
# replay the failures saved in .hypothesis/, which is how they go on finding bugs. The strategies
# themselves stay small enough that the size health checks cannot fire on any machine.
# HYPOTHESIS_PROFILE=ci (or dev) picks one by hand.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/render/golden/ from what the renderer makes now (then review the diff)",
    )


def need_service(name: str, why: str) -> str:
    """The service's value, or skip (fail under CI=true, where every service must be there)."""
    value = SERVICES.get(name)
    if value:
        return value
    message = f"{why} is not available ({name} unset; `make test` starts it when run as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def now() -> datetime:
    return DEMO_NOW


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file made once; each test gets a copy (migrations take ~0.2 s)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def db_path(tmp_path: Path, template_db: Path) -> Path:
    path = tmp_path / "digest.db"
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def settings(tmp_path: Path, db_path: Path) -> Settings:
    """The demo configuration, on a temporary database and outbox."""
    return load_settings(
        ROOT / "digest.toml",
        database={"url": f"sqlite:///{db_path}"},
        delivery={"backend": "outbox", "outbox_dir": str(tmp_path / "outbox")},
        secret_key=TEST_SECRET,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return need_service("DIGEST_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return need_service("DIGEST_TEST_CHROMIUM", "Debian's Chromium")


@pytest.fixture(scope="session")
def axe_path() -> Path:
    """axe-core's axe.min.js (npm `axe-core`, pinned in tests/services.sh), for Playwright to
    inject into the pages it checks."""
    return Path(need_service("DIGEST_TEST_AXE", "axe-core (npm, installed by tests/services.sh)"))


@pytest.fixture(scope="session")
def node_mjml() -> Path:
    """The official MJML compiler's `mjml` command (tests/mjml_node.py runs it)."""
    return Path(need_service("DIGEST_TEST_MJML", "Node MJML (npm mjml on Debian's node)"))


@pytest.fixture(scope="module")
def _pg_engine(postgres_url: str) -> Iterator[Engine]:
    with postgres_schema(postgres_url) as engine:
        yield engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_db(request: pytest.FixtureRequest, settings: Settings) -> Iterator[LedgerDb]:
    if request.param == "sqlite":
        engine = request.getfixturevalue("engine")
        yield LedgerDb("sqlite", engine, session_factory(engine), settings)
        return
    engine = request.getfixturevalue("_pg_engine")
    empty_tables(engine)
    yield LedgerDb("postgres", engine, session_factory(engine), settings)


@pytest.fixture
def edition_id(ledger_db: LedgerDb, now: datetime) -> int:
    return make_edition(ledger_db.factory, now)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's DIGEST_* variables must not leak into tests (they override the config)."""
    for key in list(os.environ):
        if key.startswith("DIGEST_") and not key.startswith("DIGEST_TEST_"):
            monkeypatch.delenv(key)


CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> CliRun:
    """`digest ARGS...` in this process on the demo config and a database of the test's own:
    (exit code, stdout, stderr), the way a person sees them."""
    from digest.cli import main

    monkeypatch.setenv("DIGEST_CONFIG", str(ROOT / "digest.toml"))
    monkeypatch.setenv("DIGEST_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DIGEST_DELIVERY__OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("COLUMNS", "250")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["digest", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capsys.readouterr()
        return int(exit_info.value.code or 0), out, err

    return run


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's cheapest parameters in this process: a real hash (64 MiB, 3 passes) per staff
    account would add seconds to the suite and prove nothing more. `digest serve` subprocesses
    keep the real parameters."""
    from argon2 import PasswordHasher, profiles

    import digest.staff.accounts

    monkeypatch.setattr(
        digest.staff.accounts, "HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST)
    )
