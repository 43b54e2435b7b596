"""`digest init [DIR]`: a starter digest.toml, and the next three commands."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from digest.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    directory: Path = typer.Argument(
        Path("."), metavar="DIR", help="Where to write digest.toml (made if missing)."
    ),
) -> None:
    """Write a commented starter digest.toml (one feed, SQLite, the outbox backend) and say
    what to run next. An existing digest.toml is never overwritten."""
    from digest.starter import write_starter

    path = write_starter(directory)
    config = "" if directory.resolve() == Path.cwd() else f" --config {shlex.quote(str(path))}"
    console.print(
        f"Wrote {path}: a starter configuration (one feed, SQLite beside it, the outbox backend, "
        "which writes .eml files). Put your publication and its feed in it, then:",
        highlight=False,
    )
    steps = (
        ("sources check", "is the feed readable? (fetches it, stores nothing)"),
        ("build", "the week's draft edition"),
        ("preview", "its HTML and text, to open in a browser"),
    )
    for n, (command, why) in enumerate(steps, start=1):
        console.print(
            f"  {n}. digest{config} {command}    # {why}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print(
        "Subscriber links are signed with DIGEST_SECRET_KEY, from the environment: "
        "export DIGEST_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
