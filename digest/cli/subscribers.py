"""`digest subscribers ...`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape

from digest.cli.common import console, err_console, state
from digest.db import transaction
from digest.errors import UsageError
from subscribers.importer import ImportError_, import_file

app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE.csv", help="CSV with an 'email' column."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid rows even if some rows are bad."
    ),
) -> None:
    """Add or update subscribers from a CSV file (all rows, or none if any row is bad)."""
    st = state(ctx)
    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    try:
        with transaction(st.sessions) as session:
            result = import_file(
                session,
                file,
                known_sections=st.settings.newsletter.sections,
                now=datetime.now(UTC),
                skip_invalid=skip_invalid,
            )
    except ImportError_ as exc:
        for error in exc.errors:
            err_console.print(f"{file}:{error.line}: {escape(error.reason)}")
        err_console.print(f"[bold red]error:[/] {exc} (fix them, or pass --skip-invalid)")
        raise typer.Exit(1) from None
    for error in result.errors:
        err_console.print(f"[yellow]skipped[/] {file}:{error.line}: {escape(error.reason)}")
    console.print(
        f"Imported {file}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.errors)} skipped."
    )
