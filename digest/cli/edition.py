"""`digest build`, `digest preview` and `digest edition ...` (list, show, edit, approve)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from digest.cli import editions
from digest.cli.common import (
    AS_OPTION,
    actor,
    console,
    err_console,
    output_dir_option,
    parse_now,
    state,
)
from digest.human import day, plural

# What the commands run is imported inside them, so that `--help` loads none of it (README
# "Development": start-up time).
if TYPE_CHECKING:
    from digest.edition.build import BuildReport
    from digest.edition.preflight import PreflightReport
    from digest.edition.preview import Preview


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("preview")(preview)
    app.command("preflight")(preflight)
    app.add_typer(editions.app, name="edition")


def build(
    ctx: typer.Context,
    now: str | None = typer.Option(
        None,
        "--now",
        metavar="ISO-8601",
        help="Build as if it were this moment (default: now). The week is the "
        "[newsletter] window_days (default 7) days before it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    who: str | None = AS_OPTION,
) -> None:
    """Gather every source, rank the week's articles and save them as a draft edition.

    Building a week that has a draft rebuilds it, keeping the staff's edits. A thin week
    (fewer than min_items) is recorded as skipped and exits 5."""
    from digest.edition.build import build_edition
    from digest.errors import EmptyWeekError

    st = state(ctx)
    moment = parse_now(now, st.settings.publication.tz)
    try:
        report = build_edition(st.sessions, st.settings, moment, actor=actor(who))
    except EmptyWeekError as exc:
        _warn(exc.warnings)
        raise
    _warn(report.warnings + report.stale_edits)
    if as_json:
        console.print_json(json.dumps(_as_json(report)))
        return
    console.print(_table(report, st.settings.publication.tz))
    verb = "Rebuilt draft" if report.replaced_draft else "Built draft"
    sections = len({r.candidate.section for r in report.ranked})
    console.print(
        f"{verb} edition [bold]{report.edition.id}[/]: {plural(len(report.ranked), 'article')} "
        f"in {plural(sections, 'section')}, chosen from {report.in_window:,} of the week "
        f"({_gathered(report)})."
    )
    e = report.edition.id
    console.print(
        f"Next: `digest edition show {e}`, edit it, then `digest edition approve {e}`.",
        highlight=False,
    )


def _gathered(report: BuildReport) -> str:
    """What this run's gathering brought: a source that answered 304 (or a local file that did
    not change) is unchanged, not a source that gave nothing."""
    from digest.gather.values import NOT_MODIFIED

    total = len(report.sources)
    unchanged = sum(r.ok and r.status == NOT_MODIFIED for r in report.sources)
    read = sum(r.ok and r.status != NOT_MODIFIED for r in report.sources)
    if unchanged and not report.candidates:
        return f"nothing new: {unchanged}/{total} sources unchanged since they were last read"
    text = f"{report.candidates:,} gathered from {read}/{total} sources"
    return text + (f", {unchanged} unchanged since they were last read" if unchanged else "")


def _warn(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)


def _table(report: BuildReport, tz: tzinfo) -> Table:
    table = Table(title=escape(report.edition.subject), show_lines=False)
    for column in ("#", "Section", "Title", "Published", "Score"):
        table.add_column(column, overflow="fold")
    for pos, r in enumerate(report.ranked, start=1):
        c = r.candidate
        when = day(c.published_at, tz)
        table.add_row(str(pos), escape(c.section or "-"), escape(c.title), when, f"{r.score:.2f}")
    return table


def _as_json(report: BuildReport) -> dict[str, object]:
    e = report.edition
    return {
        "edition": {
            "id": e.id,
            "status": e.status,
            "subject": e.subject,
            "window_start": e.window_start.isoformat(),
            "cutoff": e.cutoff.isoformat(),
        },
        "items": [
            {
                "position": i,
                "section": r.candidate.section,
                "title": r.candidate.title,
                "url": r.candidate.url,
                "author": r.candidate.author,
                "published_at": r.candidate.published_at.isoformat()
                if r.candidate.published_at
                else None,
                "score": r.score,
                "reasons": list(r.reasons),
            }
            for i, r in enumerate(report.ranked, start=1)
        ],
        "sources": [
            {"url": s.url, "ok": s.ok, "items": s.items, "error": s.error} for s in report.sources
        ],
        "candidates": report.candidates,
        "in_window": report.in_window,
        "warnings": report.warnings,
        "stale_edits": report.stale_edits,
    }


EDITION_OPTION = typer.Option(
    None, "--edition", metavar="ID", help="The edition (default: the newest)."
)
VARIANT_OPTION = typer.Option(
    None,
    "--variant",
    metavar="SECTIONS",
    help='One variant: the sections its readers get, comma-separated ("Europe,Asia").',
)


def preview(
    ctx: typer.Context,
    edition_id: int | None = EDITION_OPTION,
    variant: str | None = VARIANT_OPTION,
    out: Path = output_dir_option(
        Path("preview"), "--out", help="Directory for the HTML and text files (made if missing)."
    ),
    screenshots: bool = typer.Option(
        True,
        "--screenshots/--no-screenshots",
        help="PNGs of the HTML at 600 and 375 px, light and dark (needs Chromium).",
    ),
    email: str | None = typer.Option(
        None,
        "--email",
        metavar="KIND",
        help="Instead of an edition: the confirmation (confirm), the note to someone already "
        "subscribed (already) or the welcome email (welcome).",
    ),
) -> None:
    """Render an edition (or one variant) to HTML and plain-text files, with sample links, take
    screenshots of it, and preflight it: what approving and sending will check."""
    from digest.edition.preflight import parse_variant, preflight_view
    from digest.edition.preview import write_mail_preview, write_preview
    from digest.edition.queries import get_edition
    from digest.edition.views import edition_view
    from digest.errors import UsageError

    st = state(ctx)
    if email is not None:
        if edition_id is not None or variant is not None:
            raise UsageError("--email previews an email to one person: no --edition or --variant")
        _print_preview(write_mail_preview(st.settings, email, out, screenshots=screenshots))
        return
    with st.sessions() as session:
        edition = get_edition(session, edition_id)
        view = edition_view(edition)
        version = edition.version
    sections = parse_variant(view, variant) if variant is not None else view.sections
    suffix = "" if variant is None else "-" + "-".join(_slug(s) for s in sections)
    done = write_preview(
        st.settings, view, sections, out, f"edition-{view.id}{suffix}", screenshots=screenshots
    )
    _print_preview(done)
    moment = datetime.now(UTC)
    report = preflight_view(st.settings, view, [(tuple(sections), None)], moment, version)
    _print_preflight(report, verbose=False)


def _print_preview(done: Preview) -> None:
    console.print(f"Subject: {escape(done.subject)}")
    console.print(f"HTML ({done.html_bytes / 1024:.1f} KB): {done.html_path}")
    console.print(f"Text ({done.text_bytes / 1024:.1f} KB): {done.text_path}")
    if done.screenshots:
        first, *others = done.screenshots
        names = ", ".join(p.stem.removeprefix(done.html_path.stem + "-") for p in others)
        console.print(f"Screenshots: {first} (and {names})", highlight=False, soft_wrap=True)
    else:
        console.print(f"Screenshots: {escape(done.no_screenshots or '')}", highlight=False)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


def preflight(
    ctx: typer.Context,
    edition_id: int | None = EDITION_OPTION,
    variant: str | None = VARIANT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print every check as JSON."),
) -> None:
    """Check an edition's email as receivers will get it: size as sent, links, images, the
    text part, the unsubscribe headers, subject and preheader; CSS some clients ignore.

    Without --variant: the full edition and every variant that has subscribers, as approving
    does. Exits 10 when a check failed (approve and send refuse it without --force)."""
    from digest.edition.preflight import preflight_edition
    from digest.errors import PreflightError

    st = state(ctx)
    report = preflight_edition(st.sessions, st.settings, edition_id, datetime.now(UTC), variant)
    if as_json:
        console.print_json(json.dumps(report.as_json()))
    else:
        _print_preflight(report, verbose=True)
    if not report.ok:
        raise typer.Exit(PreflightError.exit_code)


def _print_preflight(report: PreflightReport, *, verbose: bool) -> None:
    """Failures always, with their fix; passes and warnings in full only when `verbose`."""
    if verbose:
        table = Table(title=f"Preflight of edition {report.edition_id}")
        for column in ("Variant (sections)", "Readers", "HTML as sent", "Result"):
            table.add_column(column, overflow="fold")
        for v in report.variants:
            result = "[green]pass[/]" if not v.failed else f"[red]{len(v.failed)} failed[/]"
            readers = "-" if v.recipients is None else str(v.recipients)
            size = f"{v.html_bytes / 1024:.1f} KB"
            table.add_row(escape(v.label), readers, size, result)
        console.print(table)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    for line in report.failures:
        err_console.print(f"[red]preflight:[/] {escape(line)}", soft_wrap=True)
    hint = "" if verbose or not report.warnings else " (`digest preflight` lists the warnings)"
    colour = "green" if report.ok else "red"
    console.print(f"[{colour}]{escape(report.summary())}[/]{hint}", highlight=False)
