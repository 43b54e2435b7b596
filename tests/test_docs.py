"""The README is the manual: every command and every setting must be in it (datasette's rule)."""

from __future__ import annotations

import typing
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from digest.cli import app
from digest.config import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: Any, prefix: str = "digest") -> list[str]:
    """Every command path; typer vendors its own click, so groups are found by duck typing."""
    found = []
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        path = f"{prefix} {name}"
        found.append(path)
        if hasattr(command, "commands"):
            found += commands(command, path)
    return found


def config_keys() -> list[tuple[str, str]]:
    keys = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += [(name, key) for key in annotation.model_fields]
    return keys


@pytest.mark.parametrize("command", commands(typer.main.get_command(app)))  # type: ignore[arg-type]
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}" in README, f"{command} is missing from README.md"


@pytest.mark.parametrize(("section", "key"), config_keys())
def test_every_setting_is_documented(section: str, key: str) -> None:
    assert f"| `[{section}]` | `{key}` |" in README or f"| `[[{section}]]` | `{key}` |" in README


@pytest.mark.parametrize(
    "name", ["DIGEST_SECRET_KEY", "DIGEST_SENDGRID_API_KEY", "DIGEST_SMTP_PASSWORD"]
)
def test_every_secret_is_documented(name: str) -> None:
    assert f"`{name}`" in README


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
