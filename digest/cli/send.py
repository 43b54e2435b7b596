"""`digest send`."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from digest.backends import get_backend
from digest.cli.common import console, parse_now, state
from digest.send import SendReport, dry_run, send_edition


def register(app: typer.Typer) -> None:
    app.command("send")(send)


def send(
    ctx: typer.Context,
    edition_id: int | None = typer.Option(
        None, "--edition", metavar="ID", help="Edition to send (default: the newest)."
    ),
    dry: bool = typer.Option(
        False, "--dry-run", help="Show who would get which variant; send and record nothing."
    ),
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", hidden=True),
) -> None:
    """Deliver an edition to every confirmed subscriber of its sections, exactly once each."""
    st = state(ctx)
    moment = parse_now(now, st.settings.publication.tz)
    if dry:
        report = dry_run(st.sessions, st.settings, edition_id, moment)
        _print(report)
        return
    backend = get_backend(st.settings)
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("send", total=None)
        report = send_edition(
            st.sessions,
            st.settings,
            backend,
            edition_id=edition_id,
            now=moment,
            progress=lambda n: bar.advance(task, n),
        )
    _print(report)
    if report.counts.get("failed") or report.counts.get("rejected"):
        raise typer.Exit(1)


def _print(report: SendReport) -> None:
    table = Table(title=f"Edition {report.edition_id}" + (" (dry run)" if report.dry_run else ""))
    table.add_column("Variant (sections)")
    table.add_column("Recipients", justify="right")
    for variant, count in sorted(report.variants.items()):
        table.add_row(variant.replace("|", ", "), str(count))
    console.print(table)
    if report.dry_run:
        console.print(f"{report.planned} recipients would get this edition; nothing was sent.")
        return
    summary = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    console.print(f"{report.planned} recipients planned: {summary or 'nothing to send'}.")
