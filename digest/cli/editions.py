"""`digest edition ...`: list and show editions; pin, lead, drop, move, retitle; approve, unapprove,
cancel, skip. Each command parses its arguments and calls one function of digest.edition.edits
(the console calls the same ones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from digest.cli.common import AS_OPTION, actor, console, err_console, state
from digest.human import moment, parse_iso, span

# digest.edition is imported inside each command: `--help` needs none of it.
if TYPE_CHECKING:
    from digest.edition.edits import EditResult

# The texts staff may set, one command each (digest.edition.edits.TEXTS; a test keeps them equal).
TEXTS = ("subject", "preheader", "intro")

app = typer.Typer(
    help="List, show and edit editions; approve one for sending.", no_args_is_help=True
)

EDITION = typer.Argument(..., metavar="ID", help="The edition's id (see `digest edition list`).")
ARTICLE = typer.Argument(..., metavar="ARTICLE", help="The article's id or its URL.")
JSON = typer.Option(False, "--json", help="Print JSON.")
REASON = typer.Option(None, "--reason", metavar="TEXT", help="Why (kept in the history).")


def _now() -> datetime:
    return datetime.now(UTC)


@app.command("list")
def list_command(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every edition, newest week first, with its status."""
    from digest.edition.queries import describe, list_editions

    st = state(ctx)
    with st.sessions() as session:
        rows = [
            describe(session, e, st.settings, _now(), full=False) for e in list_editions(session)
        ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("No editions yet: `digest build` makes the first draft.")
        return
    tz = st.settings.publication.tz
    table = Table()
    for column in ("ID", "Status", "Week", "Items", "Subject"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["status"],
            _week(row, tz),
            str(row["items"]),
            escape(row["subject"]),
        )
    console.print(table)


def _week(row: dict[str, Any], tz: tzinfo) -> str:
    start, end = (datetime.fromisoformat(row[key]) for key in ("window_start", "cutoff"))
    return span(start, end, tz)


@app.command("show")
def show_command(ctx: typer.Context, edition_id: int = EDITION, as_json: bool = JSON) -> None:
    """Status, window, texts, the articles with their scores and reasons, the variants and
    their recipients, and the history."""
    from digest.edition.queries import describe, get_edition

    st = state(ctx)
    with st.sessions() as session:
        data = describe(session, get_edition(session, edition_id), st.settings, _now())
    if as_json:
        console.print_json(json.dumps(data))
        return
    tz = st.settings.publication.tz
    opens, closes = (datetime.fromisoformat(t) for t in data["send_window"])
    lines = [
        f"[bold]Edition {data['id']}[/]: {data['status']}"
        + (f" ({escape(data['status_reason'])})" if data["status_reason"] else ""),
        f"Week: {_week(data, tz)} ({st.settings.publication.timezone})",
        f"Send window: {span(opens, closes, tz)}",
        f"Subject: {escape(data['subject'])}",
        f"Preheader: {escape(data['preheader']) or '(each variant: its first headlines)'}",
        f"Intro: {escape(data['intro']) or '(none)'}"
        + (" (filled in per variant)" if "{" in data["intro"] else ""),
    ]
    for line in lines:
        console.print(line, highlight=False)
    console.print(_items(data["items"]))
    variants = Table(title="Variants")
    variants.add_column("Sections")
    variants.add_column("Recipients", justify="right")
    for v in data["variants"]:
        variants.add_row(escape(", ".join(v["sections"])), f"{v['recipients']:,}")
    console.print(variants if data["variants"] else "No recipients for it yet.")
    console.print(_history(data["history"], tz))


def _items(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Articles")
    for column in ("#", "Article", "Section", "Title", "Score", "Why"):
        table.add_column(column, overflow="fold")
    for i in items:
        table.add_row(
            str(i["position"]),
            str(i["article_id"]),
            escape(i["section"]),
            escape(i["title"]) + (" [bold](pinned)[/]" if i["pinned"] else ""),
            f"{i['score']:.2f}",
            escape("; ".join(i["reasons"])),
        )
    return table


def _history(history: list[dict[str, Any]], tz: tzinfo) -> Table:
    table = Table(title="History")
    for column in ("When", "Who", "What", "Status", "Why"):
        table.add_column(column, overflow="fold")
    for h in history:
        status = h["to"] if h["from"] in (h["to"], None, "") else f"{h['from']} → {h['to']}"
        what = h["action"] + (f": {h['detail']}" if h["detail"] else "")
        why = (h["reason"] or "") + (" (forced)" if h["forced"] else "")
        when = moment(parse_iso(h["at"]), tz)
        table.add_row(when, escape(h["actor"]), escape(what), status, escape(why))
    return table


def _done(result: EditResult, what: str) -> None:
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    console.print(f"Edition {result.edition_id} ({result.status}): {what}.", highlight=False)


@app.command("pin")
def pin_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    article: str = ARTICLE,
    who: str | None = AS_OPTION,
) -> None:
    """Keep an article in the edition, whatever the ranking does (a rebuild keeps it too)."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.pin(st.sessions, st.settings, edition_id, article, actor(who), _now())
    _done(result, f"article pinned at position {result.position}")


@app.command("lead")
def lead_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    article: str = ARTICLE,
    who: str | None = AS_OPTION,
) -> None:
    """Pin an article and make it the lead story, read first (without this, the lead is the
    highest score)."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.pin(st.sessions, st.settings, edition_id, article, actor(who), _now(), lead=True)
    _done(result, f"article pinned as the lead, at position {result.position}")


@app.command("drop")
def drop_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    article: str = ARTICLE,
    who: str | None = AS_OPTION,
) -> None:
    """Keep an article out of the edition; the next best article takes its place."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.drop(st.sessions, st.settings, edition_id, article, actor(who), _now())
    _done(result, "article dropped")


@app.command("move")
def move_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    article: str = ARTICLE,
    to: int | None = typer.Option(
        None, "--to", metavar="POSITION", help="Position in the whole edition (1 is the top)."
    ),
    section: str | None = typer.Option(
        None, "--section", metavar="S", help="Move it into section S."
    ),
    who: str | None = AS_OPTION,
) -> None:
    """Move an article to a position, or into another section. An article stays with its
    section: moving it to the top makes its section the first one."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.move(
        st.sessions,
        st.settings,
        edition_id,
        article,
        actor(who),
        _now(),
        position=to,
        section=section,
    )
    _done(result, f"article now at position {result.position}")


def _text_command(kind: str) -> Any:
    def command(
        ctx: typer.Context,
        edition_id: int = EDITION,
        text: str = typer.Argument(
            ..., metavar="TEXT", help='The new text ("" restores the default).'
        ),
        who: str | None = AS_OPTION,
    ) -> None:
        from digest.edition import edits

        st = state(ctx)
        result = edits.set_text(
            st.sessions, st.settings, edition_id, kind, text, actor(who), _now()
        )
        _done(result, f"{kind} set")

    command.__doc__ = f"Set the edition's {kind} (an empty TEXT restores the default)."
    return command


for _kind in TEXTS:
    app.command(_kind)(_text_command(_kind))


@app.command("approve")
def approve_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    force: bool = typer.Option(
        False,
        "--force",
        help="Approve a thin week (fewer than min_items) or one that failed preflight; "
        "needs --reason.",
    ),
    reason: str | None = REASON,
    who: str | None = AS_OPTION,
) -> None:
    """Approve a draft for sending, after a preflight of the full edition and every variant that
    has subscribers: its content is frozen (an edit returns it to draft)."""
    from digest.edition import edits, lifecycle

    st = state(ctx)
    result = edits.change_status(
        st.sessions,
        st.settings,
        edition_id,
        "approve",
        actor(who),
        _now(),
        reason=reason,
        force=lifecycle.override(force, reason),
    )
    if result.preflight is not None:
        console.print(escape(result.preflight.summary()), highlight=False)
    _done(result, f"approved; `digest send --edition {edition_id}` sends it")


@app.command("unapprove")
def unapprove_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    reason: str | None = REASON,
    who: str | None = AS_OPTION,
) -> None:
    """Return an approved edition to draft."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.change_status(
        st.sessions, st.settings, edition_id, "unapprove", actor(who), _now(), reason=reason
    )
    _done(result, "back to draft")


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    reason: str | None = REASON,
    who: str | None = AS_OPTION,
) -> None:
    """This edition will not be sent (a rebuild of its week makes a new draft)."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.change_status(
        st.sessions, st.settings, edition_id, "cancel", actor(who), _now(), reason=reason
    )
    _done(result, "cancelled")


@app.command("skip")
def skip_command(
    ctx: typer.Context,
    edition_id: int = EDITION,
    reason: str = typer.Option(
        ..., "--reason", metavar="TEXT", help="Why this week gets no email."
    ),
    who: str | None = AS_OPTION,
) -> None:
    """Send nothing this week; its articles wait for the next edition."""
    from digest.edition import edits

    st = state(ctx)
    result = edits.change_status(
        st.sessions, st.settings, edition_id, "skip", actor(who), _now(), reason=reason
    )
    _done(result, "skipped; the next build reaches back for its articles")
