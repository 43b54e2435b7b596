"""The `digest` command. Thin: each command parses its options and calls one module."""

from __future__ import annotations

import sys

import click
import typer
from rich.markup import escape

from digest.cli import db as db_commands
from digest.cli import edition as edition_commands
from digest.cli import send as send_commands
from digest.cli import serve as serve_commands
from digest.cli import sources as source_commands
from digest.cli import subscribers as subscriber_commands
from digest.cli import worker as worker_commands
from digest.cli.common import State, err_console
from digest.errors import DigestError

app = typer.Typer(
    name="digest",
    help="Build a newsletter digest from a week of articles and send it to subscribers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        metavar="PATH",
        help="Configuration file (default: $DIGEST_CONFIG, else ./digest.toml).",
    ),
) -> None:
    ctx.obj = State(config=config)


edition_commands.register(app)
send_commands.register(app)
serve_commands.register(app)
worker_commands.register(app)
source_commands.register(app)
app.add_typer(subscriber_commands.app, name="subscribers")
app.add_typer(db_commands.app, name="db")


def main() -> None:
    """Entry point: a DigestError is one line on stderr and its exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except DigestError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        err_console.print("aborted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
