"""kill -9 a real `digest send` at many points; after `--resume` (and reconciliation from the
fake's signed Event Webhook batches) every subscriber has exactly one copy at the fake SendGrid.
Every case runs on SQLite and on PostgreSQL, with the default [delivery] concurrency (all six
batches in flight at once) and, for the deep cases, 40 batches with 16 requests in flight.

Crash points inside the worker come from tests/crash_runner.py (DIGEST_TEST_CRASH_AT); the
fake itself kills the sender while it holds a request, or right after answering it, and in the
deep cases while it holds sixteen requests at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
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
    process_database,
    serve_app,
    with_delivery,
)

pytestmark = pytest.mark.slow
SUBSCRIBERS = 48
BATCH = 8  # six batches
KEY = "SG.crash-test-key"
DEEP = 16  # requests in flight in the deep cases
DEEP_SUBSCRIBERS = 320  # forty batches


@dataclass
class Rig:
    fake: FakeSendGrid
    env: dict[str, str]
    db_url: str
    proc: list[subprocess.Popen[str]]
    subscribers: int = SUBSCRIBERS
    outstanding: int = 0  # requests the fake held when it killed the sender

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


def _database(
    request: pytest.FixtureRequest, settings
) -> AbstractContextManager[tuple[str, Engine]]:
    """The database of the parametrised kind (tests/send_helpers.process_database)."""
    url = request.getfixturevalue("postgres_url") if request.param != "sqlite" else None
    return process_database(request.param, settings, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rig(request: pytest.FixtureRequest, settings, now: datetime) -> Iterator[Rig]:
    """Six batches of 8, one request at a time: a kill at the n-th checkpoint leaves exactly
    the batches before it behind (with more in flight, another sender may commit in between;
    `deep_rig` kills those)."""
    with _database(request, settings) as (db_url, engine):
        one = {"DIGEST_DELIVERY__CONCURRENCY": "1"}
        yield from _rig(db_url, engine, settings, now, extra=one)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deep_rig(request: pytest.FixtureRequest, settings, now: datetime) -> Iterator[Rig]:
    """40 batches of 8, sixteen requests in flight, a fake that answers 200 ms late."""
    with _database(request, settings) as (db_url, engine):
        env = {"DIGEST_DELIVERY__CONCURRENCY": str(DEEP)}
        yield from _rig(db_url, engine, settings, now, DEEP_SUBSCRIBERS, env, latency=0.2)


def _rig(
    db_url: str,
    engine: Engine,
    settings,
    now: datetime,
    subscribers: int = SUBSCRIBERS,
    extra: dict[str, str] | None = None,
    latency: float = 0.0,
) -> Iterator[Rig]:
    factory = session_factory(engine)
    make_edition(factory, now)
    add_subscribers(factory, subscribers, now)
    with FakeSendGrid(KEY, latency=latency) as fake:
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
                    **(extra or {}),
                }
            )
            yield Rig(fake, env, db_url, [], subscribers)


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
    expected = {f"user{i}@example.com": 1 for i in range(rig.subscribers)}
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


def _hold_then_kill(rig: Rig, phase: str) -> threading.Event:
    """Hold every request at `phase` until DEEP of them are held at once, then kill the
    sender: it dies with sixteen requests outstanding. Returns the event that lets the held
    requests go (after the kill)."""
    held = threading.Event()
    count = [0]
    lock = threading.Lock()
    gate = threading.Barrier(DEEP, timeout=60)

    def hook(number: int, seen_phase: str) -> None:
        if seen_phase != phase:
            return
        with lock:
            count[0] += 1
            mine = count[0]
        if mine > DEEP:
            held.wait(60)
            return
        if gate.wait() == 0 and rig.proc:  # all sixteen are here: kill the sender now
            os.kill(rig.proc[0].pid, signal.SIGKILL)
            rig.outstanding = DEEP
        held.wait(60)

    rig.fake.on_request = hook
    return held


@pytest.mark.parametrize("phase", ["received", "accepted"])
def test_a_send_killed_with_sixteen_requests_outstanding_resumes_to_exactly_one_copy(
    deep_rig: Rig, phase: str
) -> None:
    """received: SendGrid holds sixteen requests it has not taken (they stay uncertain until
    --resend-uncertain). accepted: it took all sixteen and had not answered (their webhook
    events settle them). Either way the batches claimed behind them are sent on resume."""
    held = _hold_then_kill(deep_rig, phase)
    try:
        first = deep_rig.run("--now", "2026-11-20T09:00")
    finally:
        held.set()
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert deep_rig.outstanding == DEEP
    _settle(deep_rig)
    _exactly_once(deep_rig)
