"""`digest rank`: every candidate of the week with its score, whether it is in, and why."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from digest import human
from digest.cli.common import console, parse_now, state
from digest.human import plural


def register(app: typer.Typer) -> None:
    app.command("rank")(rank_command)


def rank_command(
    ctx: typer.Context,
    now: str | None = typer.Option(
        None,
        "--now",
        metavar="ISO-8601",
        help="Rank the week a build at this moment would (default: now).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, best first."),
) -> None:
    """Explain the ranking: every candidate of the week, its score, chosen or not, and why.

    Best first, with the reasons an edition's items carry. Reads the stored articles (it
    gathers nothing: `digest build` does) and writes nothing."""
    from digest.edition.build import rank_cutoff
    from digest.edition.ranking import article_id, candidate_json

    st = state(ctx)
    tz = st.settings.publication.tz
    moment = parse_now(now, tz)
    with st.sessions() as session:
        week = rank_cutoff(session, st.settings, moment)
        session.rollback()
    outcomes = week.result.candidates
    if as_json:
        console.print_json(json.dumps([candidate_json(r) for r in outcomes]))
        return
    if not outcomes:
        console.print(
            f"No stored articles in the week ending {moment.astimezone(tz):%Y-%m-%d %H:%M} "
            f"{st.settings.publication.timezone}: `digest build` gathers them.",
            highlight=False,
        )
        return
    table = Table(title=f"The week ending {human.moment(moment, tz)}")
    for column in ("Rank", "In", "Article", "Section", "Title", "Score", "Why"):
        table.add_column(column, overflow="fold")
    for r in outcomes:
        c = r.candidate
        table.add_row(
            str(r.rank),
            ("lead" if r.lead else "yes") if r.chosen else "-",
            str(article_id(c)),
            escape(c.section or "-"),
            escape(c.title),
            f"{r.score:.2f}",
            escape("; ".join(r.reasons)),
        )
    console.print(table)
    console.print(
        f"{len(week.result.chosen)} of {plural(len(outcomes), 'candidate')} chosen.",
        highlight=False,
    )
