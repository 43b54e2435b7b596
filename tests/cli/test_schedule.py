"""`digest run-due`, `digest status` and `--log-format` as a person (or cron) sees them: what
was done, one line; a mistake, one line and exit 2; a failed build, its own exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliRun
from tests.schedule_helpers import STAFF

BUILD_AT = "2026-11-19T09:00"
SLOT_AT = "2026-11-20T09:00"


@pytest.fixture
def scheduled(cli: CliRun, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    """The CLI with the demo's Friday slot, two staff addresses and six subscribers."""
    monkeypatch.setenv("DIGEST_SCHEDULE__CRON", "0 9 * * fri")
    monkeypatch.setenv("DIGEST_SCHEDULE__NOTIFY", json.dumps(STAFF))
    code, _, err = cli("subscribers", "import", str(ROOT / "examples" / "subscribers.csv"))
    assert code == 0, err
    return cli


def test_run_due_says_what_it_did_and_is_quiet_when_nothing_is_due(scheduled: CliRun) -> None:
    code, out, err = scheduled("run-due", "--now", "2026-11-19T08:00")
    assert (code, err) == (0, "")
    assert out == "Nothing due at 2026-11-19 08:00 EST. Next slot: 2026-11-20 09:00 EST.\n"
    assert scheduled("run-due", "-q", "--now", "2026-11-19T08:00") == (0, "", "")

    code, out, err = scheduled("run-due", "--now", BUILD_AT)
    assert (code, err) == (0, "")
    assert out.startswith("2026-11-20 09:00 EST build: done: built edition 1 (12 articles); ")
    assert out.rstrip().endswith(f"(staff told: {', '.join(STAFF)})")

    code, out, _ = scheduled("run-due", "--now", SLOT_AT)
    assert out.startswith(
        "2026-11-20 09:00 EST send: waiting: not approved: waiting until 2026-11-21 09:00 EST"
    )
    # Still waiting a minute later: news to nobody under cron (-q), shown to a person.
    assert scheduled("run-due", "-q", "--now", "2026-11-20T09:01") == (0, "", "")
    assert "waiting" in scheduled("run-due", "--now", "2026-11-20T09:02")[1]

    assert scheduled("edition", "approve", "1", "--as", "ann")[0] == 0
    code, out, _ = scheduled("run-due", "-q", "--now", "2026-11-20T09:30")
    assert code == 0
    assert out.startswith("2026-11-20 09:00 EST send: done: sent edition 1: 15 accepted")


def test_a_failed_build_is_an_error_line_and_its_exit_code(
    scheduled: CliRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DIGEST_RANK__POPULARITY_FILE", str(tmp_path / "gone.csv"))
    code, out, err = scheduled("run-due", "--now", BUILD_AT)
    assert code == 2 and out == ""  # the build's own exit code (a bad popularity_file: 2)
    assert err.startswith("error: 2026-11-20 09:00 EST build: failed: build failed: ")
    assert "gone.csv" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("run-due",), {"DIGEST_SCHEDULE__CRON": ""}, "error: [schedule] cron is not set"),
        (("schedule",), {"DIGEST_SCHEDULE__CRON": ""}, "error: [schedule] cron is not set"),
        (
            ("run-due",),
            {"DIGEST_SCHEDULE__CRON": "0 9 * *"},
            "error: DIGEST_SCHEDULE__CRON (overrides ",
        ),
        (("run-due", "--now", "tomorrow"), {}, "error: --now 'tomorrow' is not ISO-8601"),
        (("status", "--now", "soon"), {}, "error: --now 'soon' is not ISO-8601"),
        (("--log-format", "xml", "run-due"), {}, "error: --log-format 'xml': use text or json"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    scheduled: CliRun,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # an empty DIGEST_SCHEDULE__CRON switches it off
    code, out, err = scheduled(*args)
    assert code == 2 and out == ""
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_json_logs_carry_the_slot_step_state_and_edition(scheduled: CliRun) -> None:
    code, out, err = scheduled("--log-format", "json", "run-due", "--now", BUILD_AT)
    assert code == 0 and out.startswith("2026-11-20 09:00 EST build: done")
    lines = [json.loads(line) for line in err.splitlines()]
    [step] = [line for line in lines if line.get("step")]
    assert step["slot"] == "2026-11-20T14:00:00+00:00"
    assert (step["step"], step["state"], step["edition"], step["level"]) == (
        "build",
        "done",
        1,
        "info",
    )
    assert step["logger"] == "digest.schedule" and step["told"] == STAFF
    assert step["message"].startswith("slot 2026-11-20 09:00 EST build: done: built edition 1")


def test_status_shows_the_next_slot_the_edition_and_the_last_send(scheduled: CliRun) -> None:
    code, out, _ = scheduled("status", "--now", "2026-11-19T08:00")
    assert code == 0
    assert out.splitlines() == [
        'Schedule: "0 9 * * fri" in America/New_York, approval require, draft built 24 h '
        "ahead, send window 24 h; notes to editor@meridianreview.example, "
        "desk@meridianreview.example.",
        "Slot 2026-11-20 09:00 EST: the draft is built at 2026-11-19 09:00 EST; it is sent at "
        "2026-11-20 09:00 EST only if staff approve it (until 2026-11-21 09:00 EST).",
        "Current edition: none yet (`digest build`, or the schedule, makes one).",
        "Last send: none yet.",
        "Recent skips and failures: none.",
    ]
    scheduled("run-due", "--now", BUILD_AT)
    scheduled("run-due", "--now", SLOT_AT)
    out = scheduled("status", "--now", "2026-11-20T10:00")[1]
    assert (
        "Slot 2026-11-20 09:00 EST: edition 1 is a draft: it is sent at 2026-11-20 09:00 EST only "
        "if staff approve it (until 2026-11-21 09:00 EST)."
    ) in out
    assert "Slot 2026-11-27 09:00 EST: the draft is built at 2026-11-26 09:00 EST;" in out
    assert 'Current edition: 1, draft: "The Weekly Round-up: November 20, 2026", 12 articles' in out

    scheduled("run-due", "--now", "2026-11-21T09:01")  # the window closed: skipped
    out = scheduled("status", "--now", "2026-11-21T10:00")[1]
    assert "Recent skips and failures:\n  2026-11-20 09:00 EST send edition 1: skipped: " in out
    data = json.loads(scheduled("status", "--json", "--now", "2026-11-21T10:00")[1])
    assert set(data) == {
        "now",
        "schedule",
        "slots",
        "current_edition",
        "last_send",
        "recent_problems",
    }
    assert data["current_edition"]["status"] == "skipped"
    assert data["recent_problems"][0]["outcome"].startswith("edition 1 skipped: not approved")
    assert data["slots"][0]["local"] == "2026-11-27 09:00 EST"


def test_status_after_a_send_shows_its_counts(scheduled: CliRun) -> None:
    scheduled("run-due", "--now", BUILD_AT)
    scheduled("edition", "approve", "1")
    scheduled("run-due", "--now", SLOT_AT)
    out = scheduled("status", "--now", "2026-11-20T10:00")[1]
    assert "Last send: edition 1, sent 2026-11-20 09:00 EST: 15 accepted; 0 uncertain" in out
    assert "Slot 2026-11-20 09:00 EST: done: sent edition 1: 15 accepted." in out


def test_status_without_a_schedule_still_shows_the_editions(cli: CliRun) -> None:
    code, out, _ = cli("status", "--now", "2026-11-19T08:00")
    assert code == 0
    assert out.splitlines()[0] == "Schedule: none ([schedule] cron is not set)."
