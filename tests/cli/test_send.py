"""`digest send` and friends as a person uses them: one clear line on a mistake, real output."""

from __future__ import annotations

import csv
import io
import queue
import re
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from digest.send.engine import begin
from digest.store.db import make_engine, session_factory, transaction
from digest.store.models import FAILED, Delivery
from subscribers.models import UNSUBSCRIBED, Subscriber
from tests.conftest import ROOT, TEST_SECRET, CliRun
from tests.send_helpers import add_subscribers, digest_env, make_edition


@pytest.fixture
def db(tmp_path: Path, now: datetime):
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    from digest.store.db import upgrade

    upgrade(engine)
    factory = session_factory(engine)
    make_edition(factory, now)
    add_subscribers(factory, 5, now)
    yield factory
    engine.dispose()


@pytest.fixture
def cli(cli: CliRun, db: object) -> CliRun:
    """The CLI on the database `db` prepared (an edition and five subscribers)."""
    return cli


def test_send_then_status(cli, tmp_path: Path, now: datetime) -> None:
    code, out, _ = cli("send", "--now", now.isoformat())
    assert code == 0 and "5 recipients planned: 5 accepted." in out
    assert len(list((tmp_path / "outbox" / "edition-1").glob("*.eml"))) == 5
    code, out, _ = cli("send", "status", "1")
    assert code == 0
    assert "Edition 1: sent (send finished)" in out
    assert "accepted  │          5" in out.replace("│ accepted ", "accepted ")


def test_cancel_then_resume(cli, db, now: datetime, tmp_path: Path) -> None:
    begin(db, 1, now)
    code, out, _ = cli("send", "cancel", "1")
    assert code == 0 and "cancelled; 5 recipients will not be sent" in out
    code, out, _ = cli("send", "status", "1")
    assert "(send cancelled)" in out
    code, out, _ = cli("send", "--resume", "1")
    assert code == 0 and "5 accepted" in out


def test_cancel_of_an_edition_not_being_sent_is_one_line(cli) -> None:
    code, _, err = cli("send", "cancel", "1")
    assert code == 6
    assert err.strip() == (
        "error: edition 1 is approved, not being sent: no send to cancel (to call the edition "
        "off: `digest edition cancel 1`)"
    )


def test_report_failed_lists_who_did_not_get_it_and_why(cli, db, now: datetime) -> None:
    begin(db, 1, now)
    with transaction(db) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "user1@example.com")
            .values(status=UNSUBSCRIBED)
        )
    cli("send", "--resume", "1")
    with transaction(db) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == 3)
            .values(status=FAILED, error="bounce: 550 no such user")
        )
    code, out, _ = cli("send", "report", "1", "--failed")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["email"], r["status"], r["reason"]) for r in rows] == [
        ("user1@example.com", "skipped", "unsubscribed or paused before their batch was sent"),
        ("user2@example.com", "failed", "bounce: 550 no such user"),
    ]


def test_report_to_a_file_has_everyone(cli, tmp_path: Path, now: datetime) -> None:
    cli("send", "--now", now.isoformat())
    out_file = tmp_path / "report.csv"
    code, _, err = cli("send", "report", "1", "--out", str(out_file))
    assert code == 0 and "5 rows written" in err
    assert len(out_file.read_text().splitlines()) == 6


def test_test_to_sends_outside_the_ledger(cli, tmp_path: Path, now: datetime) -> None:
    code, out, _ = cli("send", "--test-to", "a@x.example, b@y.example")
    assert code == 0
    assert "a@x.example: accepted" in out and "the ledger was not touched" in out
    assert len(list((tmp_path / "outbox" / "edition-1-tests").glob("*.eml"))) == 2
    assert not (tmp_path / "outbox" / "edition-1").exists()
    code, out, _ = cli("send", "--dry-run", "--now", now.isoformat())
    assert "5 recipients would get this edition" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--test-to", "not-an-address"), "--test-to: 'not-an-address' is not an email address"),
        (("--test-to", " , "), "--test-to needs at least one address"),
        (("--resend-uncertain",), "--resend-uncertain only goes with --resume EDITION"),
        (("--workers", "2"), "--workers 2 needs PostgreSQL"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(cli, args: tuple[str, ...], message: str) -> None:
    code, _, err = cli("send", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_status_of_an_unknown_or_unsent_edition(cli) -> None:
    code, _, err = cli("send", "status", "99")
    assert code == 3 and "no edition with id 99" in err
    code, _, err = cli("send", "status", "1")
    assert code == 3 and "edition 1 has not been sent" in err


def test_resume_of_a_draft_says_how_to_start(cli) -> None:
    code, _, err = cli("send", "--resume", "1")
    assert code == 6 and "`digest send --edition 1`" in err


def test_worker_until_done_helps_a_send_and_exits(cli, db, now: datetime, tmp_path: Path) -> None:
    begin(db, 1, now)
    code, out, _ = cli("worker", "--until-done")
    assert code == 0 and "edition 1: 5 accepted" in out
    code, out, _ = cli("send", "status", "1")
    assert "sent (send finished)" in out


def test_sendgrid_without_a_key_names_the_variable(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__BACKEND", "sendgrid")
    code, _, err = cli("send")
    assert code == 2 and "DIGEST_SENDGRID_API_KEY is not set" in err


def test_send_without_a_secret_key_starts_nothing(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    code, _, err = cli("send")
    assert code == 2 and "DIGEST_SECRET_KEY is not set" in err
    code, _, err = cli("send", "status", "1")
    assert code == 3 and "edition 1 has not been sent" in err


@pytest.mark.slow
def test_worker_stops_cleanly_on_sigterm(tmp_path: Path, db) -> None:
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
            "DIGEST_SECRET_KEY": TEST_SECRET,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", "--poll", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The worker says so once it found nothing to do and polls.
        line = _first_line(proc, timeout=60)
        assert line.startswith("Waiting for sends (every 0.2 s"), line
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The process's first line on stdout; fails (not hangs) when none comes in `timeout` s."""
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"the worker printed nothing in {timeout} s")


def test_a_send_says_how_long_each_part_took(cli, now: datetime) -> None:
    code, out, _ = cli("send", "--now", now.isoformat())
    assert code == 0
    took = (
        r"Took \d+\.\d s: preflight \d+\.\d s, plan \d+\.\d s, "
        r"sending \d+\.\d s \([\d,]+ recipients/s\)\."
    )
    assert re.search(took, out), out


def test_the_old_pipeline_depth_key_warns_and_still_sends(
    cli, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__PIPELINE_DEPTH", "2")
    code, out, err = cli("send", "--now", now.isoformat())
    assert code == 0 and "5 recipients planned: 5 accepted." in out
    assert err.strip() == (
        "warning: [delivery] pipeline_depth is deprecated: read as [delivery] concurrency = 2 "
        "(requests in flight per worker); rename the key"
    )


def test_ctrl_c_stops_after_the_batch_says_what_is_left_and_resume_sends_the_rest(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, now: datetime
) -> None:
    """A person's Ctrl-C (a real SIGINT, sent by the process to itself once the first batch is
    recorded): the batch in hand finishes, the line says what went out, what is left and the
    exact command; exit 130; the resume sends the rest and nobody gets it twice."""
    import os

    from digest.send import runtime

    monkeypatch.setenv("DIGEST_DELIVERY__BATCH_SIZE", "2")
    monkeypatch.setenv("DIGEST_DELIVERY__CONCURRENCY", "1")
    seen = []

    def ctrl_c_after_the_first_batch(point: str) -> None:
        seen.append(point)
        if point == "recorded" and seen.count("recorded") == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(runtime, "checkpoint", ctrl_c_after_the_first_batch)
    before = signal.getsignal(signal.SIGINT)
    code, _, err = cli("send", "--now", now.isoformat())
    assert code == 130
    assert "Stopping after the batch in hand" in err
    assert (
        "Interrupted: edition 1: 2 of 5 recipients done (2 accepted), 3 left. "
        "`digest send --resume 1` sends the rest; nobody gets it twice." in err
    )
    assert "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) == before  # the handler is put back
    assert len(list((tmp_path / "outbox" / "edition-1").glob("*.eml"))) == 2
    monkeypatch.setattr(runtime, "checkpoint", lambda point: None)
    code, out, _ = cli("send", "--resume", "1")
    assert code == 0 and "5 recipients planned: 5 accepted." in out
    recipients = [p.read_bytes() for p in (tmp_path / "outbox" / "edition-1").glob("*.eml")]
    assert len(recipients) == 5
    addresses = {line for eml in recipients for line in eml.splitlines() if line.startswith(b"To:")}
    assert len(addresses) == 5  # five people, once each


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_exits_130_with_the_resume_command(tmp_path: Path, db) -> None:
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
            "DIGEST_DELIVERY__BATCH_SIZE": "2",
            "DIGEST_DELIVERY__CONCURRENCY": "1",
            "DIGEST_SECRET_KEY": TEST_SECRET,
            "DIGEST_TEST_INTERRUPT_AT": "recorded:2",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.crash_runner", "send", "--now", "2026-11-20T14:00Z"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 130, result.stderr
    assert "4 of 5 recipients done (4 accepted), 1 left" in result.stderr
    assert "`digest send --resume 1` sends the rest" in result.stderr
    assert "Traceback" not in result.stderr
