"""`digest sources check`, `digest articles list` and `digest picks add/list/remove`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from digest.cli.common import console, err_console, parse_now, state
from digest.errors import ConfigError, GatherError, NotFoundError, UsageError
from digest.human import day, moment, plural

# The gatherer, the picks file and the database are imported by the commands that use them.
if TYPE_CHECKING:
    from digest.config import Settings
    from digest.gather import SourceReport
    from digest.store.models import Article

sources_app = typer.Typer(help="Check the configured sources.", no_args_is_help=True)
articles_app = typer.Typer(help="Articles gathered into the database.", no_args_is_help=True)
picks_app = typer.Typer(
    help="Editor picks: articles the editors chose by hand.", no_args_is_help=True
)

NOW_HELP = "Act as if it were this moment (ISO-8601; default: now)."


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
    app.add_typer(articles_app, name="articles")
    app.add_typer(picks_app, name="picks")


@sources_app.command("check")
def check(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", help=NOW_HELP),
) -> None:
    """Fetch every source now (no cache) and show what each gave; nothing is stored.

    Exit status: 0 when every source worked, 1 when some failed, 4 when none worked.
    """
    from digest.edition.options import edition_window, gather_options, source_specs
    from digest.gather import gather

    settings = state(ctx).settings
    specs = source_specs(settings)
    if not specs:
        raise GatherError("no [[sources]] configured")
    moment = parse_now(now, settings.publication.tz)
    start, _ = edition_window(settings, moment)
    options = replace(gather_options(settings, since=start), conditional_get=False)
    result = gather(specs, now=moment, options=options)
    if as_json:
        console.print_json(json.dumps([_report_json(r) for r in result.reports]))
    else:
        console.print(_sources_table(result.reports, settings.publication.tz))
        for report in result.reports:
            for warning in report.warnings:
                err_console.print(
                    f"[yellow]warning:[/] {escape(report.label)}: {escape(warning)}",
                    soft_wrap=True,
                )
    failed = len(result.failures)
    if failed == len(specs):
        raise GatherError(f"none of the {len(specs)} sources could be read")
    if failed:
        err_console.print(f"{failed} of {len(specs)} sources failed")
        raise typer.Exit(1)


def _sources_table(reports: list[SourceReport], tz: tzinfo) -> Table:
    table = Table(title="Sources")
    for column in ("Source", "Kind", "Status", "Items", "Newest item", "Time"):
        table.add_column(column, overflow="fold")
    for r in reports:
        status = "[green]ok[/]" if r.ok else f"[red]{escape(r.error or 'error')}[/]"
        newest = day(r.newest, tz)
        table.add_row(escape(r.label), r.kind, status, str(r.items), newest, f"{r.elapsed_s:.2f} s")
    return table


def _report_json(r: SourceReport) -> dict[str, object]:
    return {
        "url": r.url,
        "name": r.name,
        "kind": r.kind,
        "ok": r.ok,
        "status": r.status,
        "error": r.error,
        "error_kind": r.error_kind,
        "items": r.items,
        "pages": r.pages,
        "newest": r.newest.isoformat() if r.newest else None,
        "elapsed_s": round(r.elapsed_s, 3),
        "warnings": list(r.warnings),
    }


@articles_app.command("list")
def list_command(
    ctx: typer.Context,
    week: str | None = typer.Option(
        None,
        "--week",
        metavar="WEEK",
        help="2026-W47 (an ISO week, Monday to Monday), 2026-11-20 (the week ending that day) "
        "or 2026-11-20T09:00 (the week ending then, like build --now). Default: this week.",
    ),
    all_: bool = typer.Option(False, "--all", help="Every stored article, not one week."),
    section: str | None = typer.Option(None, "--section", help="Only this section."),
    as_json: bool = typer.Option(False, "--json", help="Print the articles as JSON."),
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", help=NOW_HELP),
) -> None:
    """List the candidate articles of a week: dates, flags, picks, sections and sources."""
    from digest.edition.stored import list_articles
    from digest.edition.windows import named_window

    st = state(ctx)
    settings = st.settings
    tz = settings.publication.tz
    sections = settings.newsletter.sections
    if section is not None and section not in sections:
        raise UsageError(
            f"--section {section!r} is not a section of this newsletter "
            f"(configured: {', '.join(sections)})"
        )
    start, end = (None, None)
    if not all_:
        try:
            start, end = named_window(week, settings, parse_now(now, tz))
        except ValueError as exc:
            raise UsageError(f"--week {exc}") from None
    with st.sessions() as session:
        rows = list_articles(session, start, end, section)
    if as_json:
        console.print_json(json.dumps([_article_json(a) for a in rows]))
        return
    table = Table(title="Articles")
    for column in ("ID", "Published", "Flag", "Section", "Title", "Source"):
        table.add_column(column, overflow="fold")
    for a in rows:
        when = a.published_at or a.first_seen_at
        title = ("★ " if a.is_pick else "") + (a.pick_title or a.title)
        table.add_row(
            str(a.id),
            day(when, tz),
            a.date_flag or "",
            escape(a.pick_section or a.section or "-"),
            escape(title),
            escape(a.source_url or "-"),
        )
    console.print(table)
    where = "in the database"
    if start is not None and end is not None:
        first, last = (t.astimezone(tz).strftime("%Y-%m-%d %H:%M") for t in (start, end))
        where = f"between {first} and {last} {settings.publication.timezone}"
    picks = sum(a.is_pick for a in rows)
    console.print(
        f"{plural(len(rows), 'article')} {where} ({plural(picks, 'editor pick')}, ★).",
        highlight=False,
    )


def _article_json(a: Article) -> dict[str, object]:
    return {
        "id": a.id,
        "url": a.url,
        "title": a.pick_title or a.title,
        "section": a.pick_section or a.section,
        "author": a.author,
        "published_at": a.published_at.isoformat() if a.published_at else None,
        "first_seen_at": a.first_seen_at.isoformat(),
        "date_flag": a.date_flag,
        "source_url": a.source_url,
        "is_pick": a.is_pick,
        "pick_note": a.pick_note,
        "summary": a.summary,
        "image_url": a.image_url,
    }


def picks_path(settings: Settings, explicit: Path | None) -> Path:
    """--file, else the first [[sources]] with kind = "picks"."""
    from digest.gather.fetch import is_http, local_path

    if explicit is not None:
        return explicit
    for source in settings.sources:
        if source.kind == "picks":
            location = settings.source_location(source)
            if is_http(location):
                raise UsageError(f"the picks file {location} is remote: edit it where it lives")
            return local_path(location)
    raise UsageError('no [[sources]] with kind = "picks" in the config: add one, or pass --file')


FILE_OPTION = typer.Option(
    None, "--file", metavar="PATH", help="Picks file (default: the config's picks source)."
)


@picks_app.command("add")
def add(
    ctx: typer.Context,
    url: str = typer.Argument(..., metavar="URL", help="The article's URL."),
    note: str | None = typer.Option(
        None, "--note", metavar="TEXT", help="Why the editors picked it."
    ),
    section: str | None = typer.Option(
        None, "--section", metavar="S", help="Its section in the email."
    ),
    title: str | None = typer.Option(
        None, "--title", metavar="T", help="A title to use instead of the article's."
    ),
    file: Path | None = FILE_OPTION,
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", help=NOW_HELP),
) -> None:
    """Pick an article (or update a pick): it joins the week's edition at the next build."""
    from digest.gather.picks import Pick, PicksError, add_pick, check_section, check_url

    settings = state(ctx).settings
    try:
        url = check_url(url)
        check_section(section, tuple(settings.newsletter.sections))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = picks_path(settings, file)
    pick = Pick(url, note, title, section, parse_now(now, settings.publication.tz))
    try:
        new = add_pick(path, pick)
    except PicksError as exc:
        raise ConfigError(str(exc)) from None
    verb = "Added" if new else "Updated"
    console.print(f"{verb} pick {escape(url)} in {path}; it counts from the next `digest build`.")


@picks_app.command("list")
def list_picks(
    ctx: typer.Context,
    file: Path | None = FILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the picks as JSON."),
) -> None:
    """Show the editor picks in the picks file."""
    from digest.gather.picks import PicksError, load_picks

    settings = state(ctx).settings
    path = picks_path(settings, file)
    try:
        picks = load_picks(path, tuple(settings.newsletter.sections))
    except PicksError as exc:
        raise ConfigError(str(exc)) from None
    for problem in picks.problems:
        err_console.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    if as_json:
        rows = [
            {**p.__dict__, "added_at": p.added_at.isoformat() if p.added_at else None}
            for p in picks.picks
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"Editor picks ({path})")
    for column in ("#", "URL", "Title", "Section", "Note", "Added"):
        table.add_column(column, overflow="fold")
    tz = settings.publication.tz
    for n, p in enumerate(picks.picks, start=1):
        added = moment(p.added_at, tz)
        cells = (p.url, p.title or "", p.section or "", p.note or "", added)
        table.add_row(str(n), *(escape(c) for c in cells))
    console.print(table)
    console.print(f"{plural(len(picks.picks), 'pick')}.")


@picks_app.command("remove")
def remove(
    ctx: typer.Context,
    url: str = typer.Argument(..., metavar="URL", help="The picked article's URL."),
    file: Path | None = FILE_OPTION,
) -> None:
    """Un-pick an article; from the next build it is an ordinary article again."""
    from digest.gather.picks import PicksError
    from digest.gather.picks import remove_pick as remove_from_file

    path = picks_path(state(ctx).settings, file)
    try:
        removed = remove_from_file(path, url)
    except PicksError as exc:
        raise ConfigError(str(exc)) from None
    if not removed:
        raise NotFoundError(f"no pick with URL {url} in {path}")
    console.print(f"Removed pick {escape(url)} from {path}.")
