"""The `digest` command. Thin: each command parses its options and calls one module.

Start-up time is part of the interface (README "Development"): `digest --help` and every
`digest COMMAND --help` answer in <= 0.3 s, a command that opens the database in <= 0.6 s. So:

- Commands are loaded when they are used: `digest subscribers import` imports the subscriber
  commands and what they need, not the gatherer, the renderer, the send engine or the web stack.
- A command module (digest/cli/*.py) imports at its top only the standard library, typer, rich,
  digest.cli.common, digest.cli.safe, digest.errors, digest.human and constants modules that
  import nothing (subscribers.states); everything else is imported inside the command that
  uses it, with types for annotations under `if TYPE_CHECKING:`. `digest --help` loads every
  command module, so its list is always the commands' own help, and costs only what those
  imports cost.
- tests/cli/test_startup.py renders every help page and fails when one loads the database, the
  settings, the gatherer, the renderer, the mailer or the web stack; bench/startup.py times them.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
import typer.core
import typer.main
from rich.markup import escape

from digest.cli.common import State, err_console
from digest.cli.safe import shown
from digest.errors import DigestError, UsageError

# Top-level command -> the module that defines it, in the order `digest --help` lists them
# (typer's: plain commands first, then groups). A module either has `register(app)` (which may
# add several commands) or is a group of its own with a Typer `app`.
COMMANDS: dict[str, str] = {
    "init": "digest.cli.init",
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
        for command in found.values():
            escape_help(command)
        _loaded[module_name] = found
    return found


def escape_help(command: Any) -> None:
    """Help is rendered as Rich markup, which would swallow `[web]`, `[newsletter]` and every
    other bracketed word: the texts are written plainly, as a person reads them, and escaped
    here, once, for every command, its options and its subcommands. A docstring's paragraphs
    are rejoined too, so that the terminal wraps them, not the source's line ends."""
    for attribute in ("help", "short_help", "epilog"):
        text = getattr(command, attribute, None)
        if text:
            setattr(command, attribute, escape(_reflow(text)))
    for param in getattr(command, "params", ()):
        if getattr(param, "help", None):
            param.help = escape(param.help)
    for sub in getattr(command, "commands", {}).values():
        escape_help(sub)


def _reflow(text: str) -> str:
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


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


def _show_version(value: bool) -> None:
    if value:
        from digest import __version__

        print(f"digest {__version__}")
        raise typer.Exit()


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
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_show_version,
        help="Print digest's version and exit.",
    ),
) -> None:
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format {log_format!r}: use text or json")
    ctx.obj = State(config=config, log_format=log_format)
    ctx.call_on_close(ctx.obj.close)


# Newer typer vendors its own copy of click, whose errors are not click's; its own classes name
# the right ones either way (importing click itself would cost start-up time for nothing).
_CLICK_ERRORS: tuple[type[Any], ...] = tuple(
    kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException"
)
_ABORTS: tuple[type[BaseException], ...] = (typer.Abort,)


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
