"""What every command shares: loading settings once, opening the database, parsing --now, the
output-path options.

Imported by every command (and by `digest --help`), so the configuration and database modules
are imported when first used, not here (README "Development": start-up time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape

from digest.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from digest.config import Settings

console = Console()
err_console = Console(stderr=True)


@dataclass
class State:
    """Per-invocation state, built lazily so that `--help` never needs a config file."""

    config: str | None = None
    # --log-format: how `digest schedule` and `digest run-due` write their log lines.
    log_format: str = "text"
    _settings: Settings | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import config_path, deprecations, load_settings

            self._settings = load_settings(config_path(self.config, dict(os.environ)))
            for line in deprecations(self._settings):
                err_console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from digest.store.db import open_database

            self._engine = open_database(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        """Returns the pooled connections: a server database counts them, and a command run
        in-process (the tests, the scheduler) must not leave them to the garbage collector."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def sessions(self) -> sessionmaker[Session]:
        from digest.store.db import session_factory

        return session_factory(self.engine)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def parse_now(value: str | None, tz: ZoneInfo) -> datetime:
    """--now as ISO-8601; without an offset it is read in the publication's timezone."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--now {value!r} is not ISO-8601 (e.g. 2026-11-20T09:00 or 2026-11-20T14:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def actor(name: str | None) -> str:
    """Who is acting, for an edition's history: --as NAME, else the operating-system user."""
    if name is not None:
        if not name.strip():
            raise UsageError("--as needs a name")
        return name.strip()[:200]
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


AS_OPTION = typer.Option(
    None, "--as", metavar="NAME", help="Who is acting, for the history (default: your login)."
)


def _option_name(param: Any) -> str:
    """The option as a person writes it: its long name (--output, not -o)."""
    names: list[str] = list(getattr(param, "opts", None) or ["--out"])
    return max(names, key=len)


def _checked_file(param: typer.CallbackParam, value: Path | None) -> Path | None:
    from digest.outputs import check_file

    return None if value is None else check_file(value, _option_name(param))


def _checked_directory(param: typer.CallbackParam, value: Path | None) -> Path | None:
    from digest.outputs import check_directory

    return None if value is None else check_directory(value, _option_name(param))


def output_file_option(*names: str, help: str, metavar: str = "FILE") -> Any:
    """An option naming a file a command writes (the default: standard output). Checked while
    the command line is parsed (digest.outputs), so a bad path is one line before any work."""
    return typer.Option(None, *names, metavar=metavar, help=help, callback=_checked_file)


def output_dir_option(default: Path, *names: str, help: str, metavar: str = "DIR") -> Any:
    """An option naming a directory a command writes files into (made if missing; its parent
    must exist). Checked while the command line is parsed, like output_file_option."""
    return typer.Option(default, *names, metavar=metavar, help=help, callback=_checked_directory)
