"""`digest staff ...`: add (password from DIGEST_STAFF_PASSWORD or asked twice), list, remove,
password, token (printed once, alone on stdout), revoke; every mistake is one line and its
exit code, and no password or token hash is ever printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.staff import accounts
from digest.store.db import make_engine, session_factory, transaction
from tests.conftest import CliRun

PASSWORD = "correct horse battery staple"


@pytest.fixture
def with_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_STAFF_PASSWORD", PASSWORD)


def test_add_list_token_revoke_remove(cli: CliRun, with_password: None) -> None:
    code, out, _ = cli("staff", "add", "Ana@Meridianreview.example", "--role", "publisher")
    assert code == 0 and out == "Added ana@meridianreview.example (publisher).\n"
    code, token, err = cli("staff", "token", "ana@meridianreview.example", "--name", "CMS")
    assert code == 0 and token.startswith("dgst_") and token.count("\n") == 1
    assert "API token 1 (CMS): shown once" in err
    code, out, _ = cli("staff", "list", "--json")
    listed: dict[str, Any] = json.loads(out)
    assert listed["staff"][0]["email"] == "ana@meridianreview.example"
    assert listed["staff"][0]["tokens"] == 1 and listed["tokens"][0]["name"] == "CMS"
    assert token.strip() not in out and "argon2" not in out
    code, out, _ = cli("staff", "list")
    assert code == 0 and "ana@meridianreview.example" in out and "CMS" in out
    assert cli("staff", "revoke", "1")[1] == "Revoked API token 1 (CMS).\n"
    assert cli("staff", "revoke", "1")[1] == "API token 1 (CMS) was already revoked.\n"
    code, out, _ = cli("staff", "remove", "ana@meridianreview.example")
    assert code == 0 and "no longer work" in out
    assert cli("staff", "list")[1].startswith("No staff yet")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("add", "x@example.org", "--role", "boss"),
            2,
            "--role 'boss': choose editor or publisher",
        ),
        (("add", "not-an-address", "--role", "editor"), 2, "is not an email address"),
        (("remove", "nobody@example.org"), 3, "nobody@example.org is not a staff member"),
        (("token", "nobody@example.org"), 3, "is not a staff member"),
        (("revoke", "42"), 3, "no API token with id 42"),
        (("password", "nobody@example.org"), 3, "is not a staff member"),
    ],
)
def test_mistakes_are_one_line_and_an_exit_code(
    cli: CliRun, with_password: None, args: tuple[str, ...], code: int, message: str
) -> None:
    got, _, err = cli("staff", *args)
    assert got == code and message in err and err.startswith("error:") and err.count("\n") == 1


def test_a_short_password_and_a_second_add_are_refused(
    cli: CliRun, monkeypatch: pytest.MonkeyPatch, with_password: None
) -> None:
    assert cli("staff", "add", "a@example.org", "--role", "editor")[0] == 0
    code, _, err = cli("staff", "add", "a@example.org", "--role", "publisher")
    assert code == 2 and "already a staff member" in err
    monkeypatch.setenv("DIGEST_STAFF_PASSWORD", "short")
    code, _, err = cli("staff", "add", "b@example.org", "--role", "editor")
    assert code == 2 and "at least 12" in err


def test_without_the_variable_the_password_is_asked_twice_hidden(
    cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []

    def prompt(text: str, **options: Any) -> str:
        asked.append({"text": text, **options})
        return PASSWORD

    monkeypatch.setattr("digest.cli.staff.typer.prompt", prompt)
    monkeypatch.setattr("digest.cli.staff.sys.stdin.isatty", lambda: True)
    assert cli("staff", "add", "a@example.org", "--role", "editor")[0] == 0
    assert asked == [{"text": "Password", "hide_input": True, "confirmation_prompt": True}]


def test_without_the_variable_or_a_terminal_it_says_what_to_do(cli: CliRun) -> None:
    code, _, err = cli("staff", "add", "a@example.org", "--role", "editor")
    assert code == 2 and "set DIGEST_STAFF_PASSWORD" in err


def test_a_new_password_works_and_the_old_one_does_not(
    cli: CliRun, monkeypatch: pytest.MonkeyPatch, with_password: None, tmp_path: Path
) -> None:
    cli("staff", "add", "a@example.org", "--role", "editor")
    monkeypatch.setenv("DIGEST_STAFF_PASSWORD", "an entirely new password")
    code, out, _ = cli("staff", "password", "a@example.org")
    assert code == 0 and "console sessions ended" in out
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with transaction(session_factory(engine)) as session:
            now = datetime.now(UTC)
            assert accounts.authenticate(session, "a@example.org", PASSWORD, now) is None
            new = accounts.authenticate(session, "a@example.org", "an entirely new password", now)
            assert new is not None
    finally:
        engine.dispose()
