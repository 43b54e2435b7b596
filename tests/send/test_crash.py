"""kill -9 a real `digest send` at many points; after `--resume` (and reconciliation from the
fake's signed Event Webhook batches) every subscriber has exactly one copy at the fake SendGrid.
Every case runs on SQLite and on PostgreSQL.

Crash points inside the worker come from tests/crash_runner.py (DIGEST_TEST_CRASH_AT); the
fake itself kills the sender while it holds a request, or right after answering it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from digest.store.db import make_engine, session_factory
from digest.store.models import ACCEPTED, SENT, Edition
from digest.web import webhooks
from tests.conftest import ROOT, TEST_SECRET
from tests.fakes.sendgrid import FakeSendGrid
from tests.send_helpers import (
    add_subscribers,
    digest_env,
    ledger_statuses,
    make_edition,
    postgres_schema,
    serve_app,
    with_delivery,
)

pytestmark = pytest.mark.slow
SUBSCRIBERS = 48
BATCH = 8  # six batches
KEY = "SG.crash-test-key"


@dataclass
class Rig:
    fake: FakeSendGrid
    env: dict[str, str]
    db_url: str
    proc: list[subprocess.Popen[str]]

    def run(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if crash_at:
            env["DIGEST_TEST_CRASH_AT"] = crash_at
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_runner", "send", *args],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.proc[:] = [proc]
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def statuses(self) -> dict[str, str]:
        """Each address's state in the ledger (its own, or its batch's)."""
        engine = make_engine(self.db_url)
        try:
            return ledger_statuses(session_factory(engine))
        finally:
            engine.dispose()

    def edition_status(self) -> str:
        engine = make_engine(self.db_url)
        try:
            with session_factory(engine)() as session:
                return str(session.scalar(select(Edition.status)))
        finally:
            engine.dispose()


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest, settings) -> Iterator[tuple[str, Engine]]:
    """The test's own SQLite file, or a schema of its own on the test PostgreSQL (the
    scale-out database), with a URL the `digest send` subprocesses can open."""
    if request.param == "sqlite":
        engine = make_engine(settings.database.url)
        try:
            yield settings.database.url, engine
        finally:
            engine.dispose()
        return
    postgres_url = request.getfixturevalue("postgres_url")
    with postgres_schema(postgres_url) as engine:
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        options = urllib.parse.urlencode({"options": f"-csearch_path={schema}"})
        yield f"{postgres_url}?{options}", engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rig(request: pytest.FixtureRequest, settings, now: datetime) -> Iterator[Rig]:
    with _database(request, settings) as (db_url, engine):
        yield from _rig(db_url, engine, settings, now)


def _rig(db_url: str, engine: Engine, settings, now: datetime) -> Iterator[Rig]:
    factory = session_factory(engine)
    make_edition(factory, now)
    add_subscribers(factory, SUBSCRIBERS, now)
    with FakeSendGrid(KEY) as fake:
        app = FastAPI()
        app.state.settings = with_delivery(settings, webhook_public_key=fake.public_key)
        app.state.sessions = factory
        app.include_router(webhooks.router())
        with serve_app(app) as base:
            fake.webhook_url = base + webhooks.PATH
            env = digest_env(
                {
                    "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                    "DIGEST_DATABASE__URL": db_url,
                    "DIGEST_DELIVERY__BACKEND": "sendgrid",
                    "DIGEST_DELIVERY__SENDGRID_HOST": fake.url,
                    "DIGEST_DELIVERY__BATCH_SIZE": str(BATCH),
                    "DIGEST_DELIVERY__RETRY_BASE_DELAY": "0.05",
                    "DIGEST_SENDGRID_API_KEY": KEY,
                    "DIGEST_SECRET_KEY": TEST_SECRET,
                    "COLUMNS": "200",
                }
            )
            yield Rig(fake, env, db_url, [])


def _kill_on(rig: Rig, request: int, phase: str) -> None:
    def hook(number: int, seen_phase: str) -> None:
        if number == request and seen_phase == phase and rig.proc:
            os.kill(rig.proc[0].pid, signal.SIGKILL)

    rig.fake.on_request = hook


def _settle(rig: Rig) -> subprocess.CompletedProcess[str]:
    """Resume until done; resend what stays uncertain only if the fake never got it."""
    rig.fake.on_request = None
    rig.fake.flush()
    resumed = rig.run("--resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    uncertain = {e for e, s in rig.statuses().items() if s == "submitted"}
    if uncertain:
        assert "uncertain" in resumed.stdout
        assert not uncertain & set(rig.fake.copies()), "an uncertain row had been delivered"
        resumed = rig.run("--resume", "1", "--resend-uncertain")
        assert resumed.returncode == 0, resumed.stderr
    return resumed


def _exactly_once(rig: Rig) -> None:
    expected = {f"user{i}@example.com": 1 for i in range(SUBSCRIBERS)}
    assert dict(rig.fake.copies()) == expected
    assert set(rig.statuses().values()) == {ACCEPTED}
    assert rig.edition_status() == SENT


@pytest.mark.parametrize(
    "crash_at",
    ["planned:1", "claimed:3", "submitted:2", "recorded:2"],
)
def test_a_send_killed_inside_the_worker_resumes_to_exactly_one_copy(
    rig: Rig, crash_at: str
) -> None:
    first = rig.run("--now", "2026-11-20T09:00", crash_at=crash_at)
    assert first.returncode == -signal.SIGKILL, first.stderr
    _settle(rig)
    _exactly_once(rig)


@pytest.mark.parametrize(("request_no", "phase"), [(2, "received"), (4, "answered")])
def test_a_send_killed_while_sendgrid_holds_its_request_resumes_to_exactly_one_copy(
    rig: Rig, request_no: int, phase: str
) -> None:
    _kill_on(rig, request_no, phase)
    first = rig.run("--now", "2026-11-20T09:00")
    assert first.returncode == -signal.SIGKILL, first.stderr
    _settle(rig)
    _exactly_once(rig)


def test_a_resume_killed_again_still_ends_with_exactly_one_copy(rig: Rig) -> None:
    assert rig.run("--now", "2026-11-20T09:00", crash_at="submitted:2").returncode == -9
    rig.fake.flush()
    assert rig.run("--resume", "1", crash_at="claimed:2").returncode == -9
    _settle(rig)
    _exactly_once(rig)


def test_uncertain_rows_are_listed_and_not_sent_without_the_flag(rig: Rig) -> None:
    assert rig.run("--now", "2026-11-20T09:00", crash_at="submitted:1").returncode == -9
    rig.fake.flush()
    resumed = rig.run("--resume", "1")
    assert resumed.returncode == 0
    assert f"{BATCH} recipients are uncertain" in resumed.stdout
    assert "--resend-uncertain" in resumed.stdout
    assert sum(rig.fake.copies().values()) == SUBSCRIBERS - BATCH
    status = subprocess.run(
        [sys.executable, "-m", "digest", "send", "status", "1"],
        cwd=ROOT,
        env=rig.env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert f"uncertain: {BATCH}" in status.stdout
