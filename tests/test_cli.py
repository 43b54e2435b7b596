"""The CLI's contract with a person: one clear line and a meaningful exit code, no tracebacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from digest.cli import main
from tests.conftest import ROOT, TEST_SECRET


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    monkeypatch.setenv("DIGEST_CONFIG", str(ROOT / "digest.toml"))
    monkeypatch.setenv("DIGEST_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DIGEST_DELIVERY__OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["digest", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capsys.readouterr()
        return int(exit_info.value.code or 0), out, err

    return run


def test_help_lists_the_commands(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("build", "preview", "send", "subscribers", "db"):
        assert command in out


def test_mistyped_config_key_exits_2_with_one_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__BACKEND", "smpt")
    code, _, err = cli("build")
    assert code == 2
    assert "[delivery] backend" in err and "digest.toml" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_config_file_exits_2(cli, tmp_path: Path) -> None:
    code, _, err = cli("--config", str(tmp_path / "none.toml"), "build")
    assert code == 2
    assert "config file not found" in err


def test_malformed_now_exits_2(cli) -> None:
    code, _, err = cli("build", "--now", "next friday")
    assert code == 2
    assert "--now 'next friday' is not ISO-8601" in err


def test_empty_week_exits_5(cli) -> None:
    code, _, err = cli("build", "--now", "2020-01-01T09:00")
    assert code == 5
    assert "no edition was built" in err


def test_unknown_edition_exits_3(cli) -> None:
    code, _, err = cli("preview", "--edition", "99")
    assert code == 3
    assert "no edition with id 99" in err


def test_build_json_lists_items_with_reasons(cli) -> None:
    code, out, _ = cli("build", "--now", "2026-11-20T09:00", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["edition"]["status"] == "draft"
    assert 8 <= len(doc["items"]) <= 15
    assert all(item["reasons"] for item in doc["items"])


def test_dry_run_sends_nothing(cli, tmp_path: Path) -> None:
    cli("subscribers", "import", str(ROOT / "examples" / "subscribers.csv"))
    cli("build", "--now", "2026-11-20T09:00")
    code, out, _ = cli("send", "--dry-run")
    assert code == 0
    assert "15 recipients would get this edition" in out
    assert not (tmp_path / "outbox").exists()


def test_send_without_secret_key_names_the_variable(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("subscribers", "import", str(ROOT / "examples" / "subscribers.csv"))
    cli("build", "--now", "2026-11-20T09:00")
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    code, _, err = cli("send")
    assert code == 2
    assert "DIGEST_SECRET_KEY is not set" in err


def test_db_upgrade_reports_the_revision(cli) -> None:
    code, out, _ = cli("db", "upgrade")
    assert code == 0
    assert "0001_initial" in out or "is at" in out
