"""Exactly one build and one send per slot, whatever fires, with real processes: three
`digest run-due` started at once (at the build time, then at the slot), and two `digest
schedule` processes racing for the same slot, on a SQLite file and on PostgreSQL. And the
APScheduler process end to end: a slot a few seconds ahead on its clock, the send done by its
cron job, SIGTERM, exit 0.

The clock is passed in (`--now`): a run-due acts at that moment; a scheduler's clock starts
there and runs at real speed, so its slot comes seconds after the process starts, however
long the start took. The tests wait by polling the database, with a generous deadline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from digest.config import Settings
from digest.store.db import session_factory
from digest.store.models import Edition, ScheduleRun
from tests.conftest import ROOT, TEST_SECRET
from tests.schedule_helpers import SLOT, STAFF, actions, deliveries
from tests.send_helpers import add_subscribers, digest_env, process_database

pytestmark = pytest.mark.slow
READERS = 12
DEADLINE_S = 120


@dataclass
class Rig:
    """A database the processes share, their environment and the outbox they write; every
    process it starts is stopped when the test ends, passed or failed."""

    url: str
    engine: Engine
    env: dict[str, str]
    outbox: Path
    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def factory(self):  # type: ignore[no-untyped-def]
        return session_factory(self.engine)

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "digest", *args]
        with (
            (self.logs / f"{name}.out").open("wb") as out,
            (self.logs / f"{name}.err").open("wb") as err,
        ):  # the child keeps its own copies of the two files
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=err)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM what still runs, then SIGKILL what ignores it (a failed test's leftovers)."""
        running = [p for p in self.started if p.poll() is None]
        for p in running:
            p.send_signal(signal.SIGTERM)
        for p in running:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)

    def err(self, name: str) -> str:
        return (self.logs / f"{name}.err").read_text()

    def out(self, name: str) -> str:
        return (self.logs / f"{name}.out").read_text()

    def newsletters(self) -> int:
        return len(list((self.outbox / "edition-1").glob("*.eml")))

    def notes(self) -> int:
        return len(list((self.outbox / "edition-0-tests").glob("*.eml")))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def rig(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Rig]:
    postgres = request.getfixturevalue("postgres_url") if request.param != "sqlite" else None
    with process_database(request.param, settings, postgres) as (url, engine):
        add_subscribers(session_factory(engine), READERS, SLOT - timedelta(days=30))
        env = digest_env(
            {
                "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                "DIGEST_DATABASE__URL": url,
                "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
                "DIGEST_SECRET_KEY": TEST_SECRET,
                "DIGEST_SCHEDULE__CRON": "0 9 * * fri",
                "DIGEST_SCHEDULE__APPROVAL": "auto",
                "DIGEST_SCHEDULE__NOTIFY": json.dumps(STAFF),
                "COLUMNS": "200",
            }
        )
        rig = Rig(url, engine, env, tmp_path / "outbox", tmp_path)
        try:
            yield rig
        finally:
            rig.stop_all()


def _all(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    return [p.wait(timeout=DEADLINE_S) for p in procs]


def _wait_for(check: Callable[[], bool], procs: list[subprocess.Popen[bytes]], what: str) -> None:
    """Poll until `check()`; fail at once if a process died, or at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead, f"a process exited ({dead}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S} s"
        time.sleep(0.2)


def _sent(rig: Rig) -> bool:
    with rig.factory()() as session:
        row = session.scalar(select(ScheduleRun).where(ScheduleRun.step == "send"))
        status = session.scalar(select(Edition.status).where(Edition.cutoff == SLOT))
        return status == "sent" and row is not None and row.state == "done"


def _stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    return _all(procs)


SENT_HISTORY = [
    ("built", "digest"),
    ("rebuilt", "digest"),
    ("approved", "digest (auto)"),
    ("send started", "digest"),
    ("sent", "digest"),
]


def test_three_run_dues_at_once_build_once_and_send_once(rig: Rig) -> None:
    build = [rig.start("run-due", "--now", "2026-11-19T09:00", name=f"b{i}") for i in range(3)]
    assert _all(build) == [0, 0, 0], [rig.err(f"b{i}") for i in range(3)]
    assert actions(rig.factory()) == [("built", "digest")]
    said = [rig.out(f"b{i}") for i in range(3)]
    assert sum("build: done: built edition 1" in out for out in said) == 1

    send = [rig.start("run-due", "--now", "2026-11-20T09:00", name=f"s{i}") for i in range(3)]
    assert _all(send) == [0, 0, 0], [rig.err(f"s{i}") for i in range(3)]
    assert actions(rig.factory()) == SENT_HISTORY
    assert deliveries(rig.factory()) == READERS and rig.newsletters() == READERS
    assert rig.notes() == 2 * len(STAFF)  # the build's note and the send's, once each
    said = [rig.out(f"s{i}") for i in range(3)]
    assert sum(f"send: done: sent edition 1: {READERS} accepted" in out for out in said) == 1


def test_two_schedulers_and_a_cron_run_due_send_the_slot_once(rig: Rig) -> None:
    start = (SLOT - timedelta(seconds=8)).isoformat()
    schedulers = [rig.start("schedule", "--now", start, name=f"sched{i}") for i in range(2)]
    cron = rig.start("run-due", "--now", "2026-11-20T09:00:30", name="cron")
    _wait_for(lambda: _sent(rig), schedulers, "send of the slot")
    assert cron.wait(timeout=DEADLINE_S) == 0, rig.err("cron")
    assert _stop(schedulers) == [0, 0], [rig.err(f"sched{i}") for i in range(2)]
    history = actions(rig.factory())
    assert history[0] == ("built", "digest") and history[-3:] == SENT_HISTORY[-3:]
    assert [a for a, _ in history].count("built") == 1
    assert [a for a, _ in history].count("send started") == 1
    assert deliveries(rig.factory()) == READERS and rig.newsletters() == READERS


def test_the_scheduler_process_end_to_end(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`digest schedule` alone: it builds at start (the build time has passed on its clock),
    its cron job sends at the slot, SIGTERM stops it with exit 0; its JSON log says so."""
    with process_database("sqlite", settings) as (url, engine):
        add_subscribers(session_factory(engine), READERS, SLOT - timedelta(days=30))
        env = digest_env(
            {
                "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                "DIGEST_DATABASE__URL": url,
                "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
                "DIGEST_SECRET_KEY": TEST_SECRET,
                "DIGEST_SCHEDULE__CRON": "0 9 * * fri",
                "DIGEST_SCHEDULE__APPROVAL": "auto",
            }
        )
        rig = Rig(url, engine, env, tmp_path / "outbox", tmp_path)
        started = time.monotonic()
        start = (SLOT - timedelta(seconds=5)).isoformat()
        try:
            proc = rig.start("--log-format", "json", "schedule", "--now", start, name="sched")
            _wait_for(lambda: _sent(rig), [proc], "send of the slot")
            [code] = _stop([proc])
        finally:
            rig.stop_all()
        elapsed = time.monotonic() - started
    lines = [json.loads(line) for line in rig.err("sched").splitlines()]
    assert code == 0, lines
    messages = [line["message"] for line in lines]
    assert messages[0].startswith("schedule started: cron '0 9 * * fri' in America/New_York")
    steps = [(line.get("step"), line.get("state")) for line in lines if line.get("step")]
    assert ("build", "done") in steps
    sent = [line for line in lines if line.get("step") == "send"]
    assert sent[0]["state"] == "done" and sent[0]["edition"] == 1
    assert any(line.get("job") == "send" and "ran: 1 step" in line["message"] for line in lines)
    assert messages[-2:] == ["SIGTERM received: stopping", "schedule stopped"]
    assert rig.newsletters() == READERS
    assert elapsed < DEADLINE_S
    assert isinstance(datetime.fromisoformat(lines[0]["time"]), datetime)
