"""The CLI's contract with a person: one clear line and a meaningful exit code, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_SECRET
from tests.send_helpers import digest_env


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
    assert "DIGEST_DELIVERY__BACKEND (overrides" in err  # the value came from there
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
    assert "edition 1 is recorded as skipped" in err


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
    cli("edition", "approve", "1")
    code, out, _ = cli("send", "--dry-run", "--now", "2026-11-20T10:00")
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


def test_unknown_command_is_a_usage_error_not_a_traceback(cli) -> None:
    code, _, err = cli("sned")
    assert code == 2
    assert "No such command 'sned'" in err and "Traceback" not in err


def test_every_registered_command_is_in_the_lazy_table() -> None:
    """The root lists commands without importing their modules: a command a module registers
    must be named in COMMANDS, or `digest --help` would not show it."""
    import importlib

    import typer.main

    from digest.cli import COMMANDS

    for module_name in sorted(set(COMMANDS.values())):
        module = importlib.import_module(module_name)
        holder = typer.Typer()
        if hasattr(module, "register"):
            module.register(holder)
        else:
            holder.add_typer(module.app, name=module_name.rsplit(".", 1)[1])
        for name in typer.main.get_group(holder).commands:
            assert COMMANDS.get(name) == module_name, f"{name} ({module_name}) not in COMMANDS"


def test_help_shows_each_commands_own_help(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    assert "Manage subscribers." in out and "Database schema." in out
    assert "Run the subscriber web app" in out


HEAVY = (
    "digest.render",
    "digest.send",
    "digest.gather",
    "digest.people.notify",
    "digest.web",
    "uvicorn",
)


def test_a_command_imports_only_what_it_needs(tmp_path: Path) -> None:
    """`digest subscribers import` starts without the renderer, gatherer, mailer or web stack
    (importing every command module costs a second of start-up)."""
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email\nreader@example.com\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        f"sys.argv = ['digest', 'subscribers', 'import', {str(csv_file)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "DIGEST_SECRET_KEY": TEST_SECRET,
            "COLUMNS": "200",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "1 added" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("backend", ["smtp", "sendgrid"])
def test_an_http_base_url_with_a_real_send_backend_exits_2_with_one_line(
    cli, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__BACKEND", backend)
    monkeypatch.setenv("DIGEST_WEB__BASE_URL", "http://news.meridianreview.example")
    code, _, err = cli("build")
    assert code == 2
    assert f"[web] base_url: must start with https:// with the {backend} backend" in err
    assert "RFC 8058" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_preview_fills_every_placeholder_with_a_sample_link(cli, tmp_path: Path) -> None:
    from digest.render.placeholders import PLACEHOLDERS, preview_values

    assert set(preview_values("https://n.example")) == set(PLACEHOLDERS)
    assert cli("build", "--now", "2026-11-20T09:00")[0] == 0
    code = cli("preview", "--no-screenshots", "--out", str(tmp_path / "p"))[0]
    assert code == 0
    html = (tmp_path / "p" / "edition-1.html").read_text()
    text = (tmp_path / "p" / "edition-1.txt").read_text()
    for body in (html, text):
        assert "%%" not in body
        assert "http://127.0.0.1:8000/u/preview" in body
        assert "http://127.0.0.1:8000/manage/preview" in body
    assert 'href="http://127.0.0.1:8000/u/preview"' in html
