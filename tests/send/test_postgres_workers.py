"""Scale-out on PostgreSQL: `digest send --workers 2` runs two `digest worker` processes that
share one send through FOR UPDATE SKIP LOCKED; every subscriber still gets exactly one copy."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.parse
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.ledger import tally
from digest.send import engine as engine_module
from digest.send.claims import claimed_by
from digest.send.engine import send_edition
from digest.store.db import session_factory
from digest.store.models import ACCEPTED, PLANNED, SENT, Edition
from tests.conftest import ROOT, TEST_SECRET, CliRun
from tests.fakes.sendgrid import FakeSendGrid
from tests.send_helpers import (
    add_subscribers,
    digest_env,
    make_edition,
    postgres_schema,
    with_values,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
KEY = "SG.pg-test-key"


def test_two_worker_processes_share_a_send_exactly_once(postgres_url: str, now: datetime) -> None:
    with postgres_schema(postgres_url) as engine, FakeSendGrid(KEY) as fake:
        factory = session_factory(engine)
        make_edition(factory, now)
        add_subscribers(factory, 400, now)
        # The first request is held until a second one arrives: its worker waits for the
        # answer, so the second request is the other worker's, and both get batches.
        second, held_too_long = threading.Event(), threading.Event()

        def hold_the_first(number: int, stage: str) -> None:
            if stage != "received":
                return
            if number == 1 and not second.wait(timeout=60):
                held_too_long.set()  # let the send end; the assertion below says why it failed
            elif number == 2:
                second.set()

        fake.on_request = hold_the_first
        url = _schema_url(engine, postgres_url)
        env = digest_env(
            {
                "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                "DIGEST_DATABASE__URL": url,
                "DIGEST_DELIVERY__BACKEND": "sendgrid",
                "DIGEST_DELIVERY__SENDGRID_HOST": fake.url,
                "DIGEST_DELIVERY__BATCH_SIZE": "20",
                # One batch in flight per worker: a worker held on its first request claims
                # nothing else, so the other one must (many in flight: test_concurrency.py).
                "DIGEST_DELIVERY__CONCURRENCY": "1",
                # Longer than the fake holds the first request: no retry while it is held.
                "DIGEST_DELIVERY__REQUEST_TIMEOUT": "120",
                "DIGEST_SENDGRID_API_KEY": KEY,
                "DIGEST_SECRET_KEY": TEST_SECRET,
            }
        )
        result = subprocess.run(
            [sys.executable, "-m", "digest", "send", "--workers", "2", "--now", "2026-11-20T09:00"],
            cwd=ROOT,
            env=env,
            text=True,
            capture_output=True,
            timeout=180,
        )
        assert not held_too_long.is_set(), "the second worker sent nothing within 60 s"
        assert result.returncode == 0, result.stderr
        assert "400 accepted" in result.stdout
        assert set(Counter(r.email for r in fake.received).values()) == {1}
        assert len(fake.received) == 400
        with factory() as session:
            per_worker = dict(claimed_by(session, 1))
            statuses = set(tally.statuses(session, 1).values())
            edition_status = session.scalar(select(Edition.status))
    assert len(per_worker) == 2 and min(per_worker.values()) >= 10, per_worker
    assert statuses == {ACCEPTED} and edition_status == SENT


def _schema_url(engine: Engine, postgres_url: str) -> str:
    """The URL of the test's own schema, for settings and processes that open their own."""
    with engine.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    return postgres_url + "?" + urllib.parse.urlencode({"options": f"-csearch_path={schema}"})


def test_worker_processes_that_fail_are_in_the_report(
    postgres_url: str, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    with postgres_schema(postgres_url) as engine:
        factory = session_factory(engine)
        make_edition(factory, now)
        add_subscribers(factory, 3, now)
        # Each `digest --config <missing> worker ...` exits 2 at once: a real failing process.
        url = _schema_url(engine, postgres_url)
        report = send_edition(
            factory,
            with_values(settings, database=settings.database.model_copy(update={"url": url})),
            MemoryBackend(),
            now=now,
            workers=2,
            config=str(tmp_path / "missing.toml"),
        )
        assert report.failed_workers == [2, 2]
        assert report.counts == {PLANNED: 3} and not report.finished
        assert report.variants == {}


def test_the_cli_names_the_worker_processes_that_failed(
    postgres_url: str, cli: CliRun, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    with postgres_schema(postgres_url) as engine:
        factory = session_factory(engine)
        make_edition(factory, now)
        add_subscribers(factory, 3, now)
        monkeypatch.setenv("DIGEST_DATABASE__URL", _schema_url(engine, postgres_url))
        monkeypatch.setattr(
            engine_module,
            "worker_command",
            lambda edition_id, config: [sys.executable, "-c", "raise SystemExit(3)"],
        )
        code, out, err = cli("send", "--workers", "2", "--now", "2026-11-20T09:00")
    assert code == 0
    assert err.strip() == "2 worker(s) failed (exit codes [3, 3])"
    assert "3 recipients planned: 3 planned." in out
    assert "The send is not finished; see `digest send status 1`." in out
