"""The `digest` command. Thin: each command parses its options and calls one module.

Commands are loaded when they are used: `digest subscribers import` imports the subscriber
commands and what they need, not the gatherer, the renderer, the send engine or the web stack
(importing every command module costs more than a second, a start-up every command would pay).
`digest --help` loads them all, so its list is always the commands' own help.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import click
import typer
import typer.core
import typer.main

from digest.cli.common import State, err_console
from digest.cli.safe import shown
from digest.errors import DigestError, UsageError

# Top-level command -> the module that defines it, in the order `digest --help` lists them
# (typer's: plain commands first, then groups). A module either has `register(app)` (which may
# add several commands) or is a group of its own with a Typer `app`.
COMMANDS: dict[str, str] = {
    "build": "digest.cli.edition",
    "preview": "digest.cli.edition",
    "preflight": "digest.cli.edition",
    "rank": "digest.cli.rank",
    "serve": "digest.cli.serve",
    "worker": "digest.cli.worker",
    "schedule": "digest.cli.schedule",
    "run-due": "digest.cli.schedule",
    "status": "digest.cli.schedule",
    "edition": "digest.cli.edition",
    "send": "digest.cli.send",
    "sources": "digest.cli.sources",
    "articles": "digest.cli.sources",
    "picks": "digest.cli.sources",
    "subscribers": "digest.cli.subscribers",
    "staff": "digest.cli.staff",
    "db": "digest.cli.db",
}

_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": "rich",
}
_loaded: dict[str, dict[str, Any]] = {}


def _module_commands(module_name: str) -> dict[str, Any]:
    """The click commands one module defines, built by typer as if registered on the root."""
    found = _loaded.get(module_name)
    if found is None:
        module = importlib.import_module(module_name)
        holder = typer.Typer(**_SETTINGS)
        register = getattr(module, "register", None)
        if register is not None:
            register(holder)
        else:
            holder.add_typer(module.app, name=module_name.rsplit(".", 1)[1])
        found = dict(typer.main.get_group(holder).commands)
        _loaded[module_name] = found
    return found


class _Commands(MutableMapping[str, Any]):
    """The root's command table: every name is known up front; a command is built on access."""

    def __init__(self, eager: MutableMapping[str, Any]) -> None:
        self._eager = dict(eager)

    def __getitem__(self, name: str) -> Any:
        if name in self._eager:
            return self._eager[name]
        if name in COMMANDS:
            return _module_commands(COMMANDS[name])[name]
        raise KeyError(name)

    def __setitem__(self, name: str, command: Any) -> None:
        self._eager[name] = command

    def __delitem__(self, name: str) -> None:
        del self._eager[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._eager if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self._eager if name not in COMMANDS)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._eager


class _LazyGroup(typer.core.TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands)


app = typer.Typer(
    name="digest",
    help="Build a newsletter digest from a week of articles and send it to subscribers.",
    no_args_is_help=True,
    cls=_LazyGroup,
    **_SETTINGS,
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
    log_format: str = typer.Option(
        "text",
        "--log-format",
        metavar="text|json",
        help="Log lines of `digest schedule` and `digest run-due`: text, or one JSON object "
        "per line (slot, step, state and edition id as fields).",
    ),
) -> None:
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format {log_format!r}: use text or json")
    ctx.obj = State(config=config, log_format=log_format)
    ctx.call_on_close(ctx.obj.close)


# Newer typer vendors its own copy of click, whose errors are not click's: catch either.
_CLICK_ERRORS: tuple[type[Any], ...] = (
    click.ClickException,
    *(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException"),
)
_ABORTS: tuple[type[BaseException], ...] = (click.Abort, typer.Abort)


def main() -> None:
    """Entry point: a DigestError is one line on stderr and its exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except DigestError as exc:
        err_console.print(f"[bold red]error:[/] {shown(exc)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except _CLICK_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except _ABORTS:
        err_console.print("aborted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
