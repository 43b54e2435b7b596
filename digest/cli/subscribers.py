"""`digest subscribers ...`: import, export, list, add, remove, show, erase, resend,
purge-pending."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from rich.table import Table

from digest.cli.common import console, err_console, output_file_option, state
from digest.cli.safe import shown
from digest.errors import SubscriberStateError, UsageError
from digest.human import date, moment, parse_iso, plural
from subscribers.states import STATUSES

# Each command imports the rest itself: `--help` loads none of it, and an import of 100,000
# rows need not wait for the mailer, its templates or the privacy module to load.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from subscribers.consent import Evidence
    from subscribers.lifecycle import Notice
    from subscribers.listing import Listing

app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)


class Format(StrEnum):
    csv = "csv"
    json = "json"


def _now() -> datetime:
    return datetime.now(UTC)


def _operator() -> Evidence:
    """The evidence of consent events an operator causes from the command line."""
    from subscribers.consent import Evidence

    return Evidence(source="digest CLI (operator)")


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE.csv", help="CSV with an 'email' column."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid rows even if some rows are bad."
    ),
    confirmed: bool = typer.Option(
        False,
        "--confirmed",
        help="Every row that is not 'unsubscribed' becomes active: you vouch that these people "
        "opted in. Needs --source.",
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        metavar="TEXT",
        help="Where and how these people opted in (recorded as their consent evidence).",
    ),
) -> None:
    """Add subscribers from a CSV file (all rows, or none if any row is bad)."""
    from digest.people.audience import as_digest_errors
    from digest.store.db import transaction
    from subscribers.importer import InvalidFile, Options, import_file

    if source is not None and not confirmed:
        raise UsageError(
            "--source goes with --confirmed (the evidence that every row opted in); without "
            "--confirmed each row's own source and consented_at columns are the evidence"
        )
    st = state(ctx)
    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    with as_digest_errors():  # Options refuses --confirmed without --source, for any caller
        options = Options(
            tuple(st.settings.newsletter.sections), _now(), confirmed=confirmed, source=source
        )
    keys = st.settings.secret_keys()
    try:
        with transaction(st.sessions) as session:
            result = import_file(
                session, file, options=options, keys=keys, skip_invalid=skip_invalid
            )
    except InvalidFile as exc:
        for error in exc.errors:
            _problem(f"{shown(file)}:{error.line}: {shown(error.reason)}")
        hint = "" if skip_invalid or exc.no_valid_row else " (fix them, or pass --skip-invalid)"
        _problem(f"[bold red]error:[/] {shown(exc)}{hint}")
        raise typer.Exit(1) from None
    for error in result.errors:
        _problem(f"[yellow]skipped[/] {shown(file)}:{error.line}: {shown(error.reason)}")
    for line in result.suppressed:
        _problem(
            f"[yellow]not re-added[/] {shown(file)}:{line}: the address opted out or was erased "
            "(suppression list)"
        )
    console.print(
        f"Imported {shown(file)}: {result.added:,} added, {result.updated:,} updated, "
        f"{result.unchanged:,} unchanged, {len(result.suppressed):,} suppressed, "
        f"{len(result.errors):,} invalid.",
        highlight=False,
    )


def _problem(text: str) -> None:
    """One line per problem, never wrapped: `grep` and editors can jump to FILE:LINE."""
    err_console.print(text, highlight=False, soft_wrap=True)


@app.command("export")
def export_command(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.csv, "--format", help="csv (importable) or json."),
    output: Path | None = output_file_option(
        "--output", "-o", help="Write to this file instead of standard output."
    ),
    status: str | None = typer.Option(
        None, "--status", metavar="STATUS", help=f"Only this status ({', '.join(STATUSES)})."
    ),
) -> None:
    """Write every subscriber as CSV (the import's columns first) or JSON (with consent history)."""
    from digest.outputs import open_file

    st = state(ctx)
    _check_status(status)
    keys = st.settings.secret_keys() if fmt is Format.json else []
    if output is None:
        with st.sessions() as session:
            _write(session, sys.stdout, fmt, keys, status)
        return
    with open_file(output, "--output") as out, st.sessions() as session:
        count = _write(session, out, fmt, keys, status)
    console.print(f"Wrote {plural(count, 'subscriber')} to {shown(output)}.", highlight=False)


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")


def _write(session: Session, out: TextIO, fmt: Format, keys: list[str], status: str | None) -> int:
    from subscribers import export

    if fmt is Format.csv:
        return export.write_csv(session, out, status)
    return export.write_json(session, out, keys, status)


@app.command("list")
def list_command(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", metavar="STATUS", help=f"Only this status ({', '.join(STATUSES)})."
    ),
    section: str | None = typer.Option(
        None, "--section", metavar="SECTION", help="Only those who get this section."
    ),
    search: str | None = typer.Option(
        None, "--search", metavar="TEXT", help="Only addresses or names containing TEXT."
    ),
    limit: int = typer.Option(
        100, "--limit", min=0, metavar="N", help="Show at most N subscribers (0: all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (times in ISO 8601)."),
) -> None:
    """Subscribers by address, and how many there are per status and per section."""
    from subscribers.listing import list_subscribers

    st = state(ctx)
    _check_status(status)
    sections = st.settings.newsletter.sections
    if section is not None and section not in sections:
        raise UsageError(
            f"--section {section!r} is not a section of this newsletter "
            f"(configured: {', '.join(sections)})"
        )
    with st.sessions() as session:
        listing = list_subscribers(
            session, sections, status=status, section=section, search=search,
            limit=limit or None,
        )  # fmt: skip
    if as_json:
        from subscribers.export import json_text

        sys.stdout.write(json_text(_listing_json(listing), indent=2) + "\n")
        return
    _print_listing(listing, st.settings.publication.tz)


def _print_listing(listing: Listing, tz: tzinfo) -> None:
    if not listing.total:
        console.print("No subscribers match.", highlight=False)
        return
    table = Table()
    table.add_column("Email", no_wrap=True)  # an address is copied whole, never folded
    for column in ("Name", "Status", "Sections"):
        table.add_column(column)
    for column in ("Subscribed", "Confirmed"):
        table.add_column(column, no_wrap=True)
    for p in listing.shown:
        table.add_row(
            shown(p.email),
            shown(p.name or ""),
            p.status,
            "all" if p.sections is None else shown(", ".join(p.sections)),
            date(p.created_at, tz),
            date(p.confirmed_at, tz),
        )
    console.print(table)
    listed = len(listing.shown)
    more = f" (showing {listed:,}; --limit 0 shows all)" if listed < listing.total else ""
    console.print(f"{plural(listing.total, 'subscriber')}{more}.", highlight=False)
    console.print(_counts_table(listing))


def _counts_table(listing: Listing) -> Table:
    """Per section (a subscriber of every section counts in each) and per status."""
    statuses = [s for s in STATUSES if listing.by_status[s]]
    table = Table(title="Per section and status")
    table.add_column("Section")
    for name in [*statuses, "total"]:
        table.add_column(name, justify="right")
    for name, counts in listing.by_section.items():
        cells = [f"{counts[s]:,}" for s in statuses]
        table.add_row(shown(name), *cells, f"{sum(counts.values()):,}")
    cells = [f"{listing.by_status[s]:,}" for s in statuses]
    table.add_row("[bold]every subscriber[/]", *cells, f"{listing.total:,}")
    return table


def _listing_json(listing: Listing) -> dict[str, object]:
    def iso(when: datetime | None) -> str | None:
        return None if when is None else when.isoformat().replace("+00:00", "Z")

    return {
        "total": listing.total,
        "shown": len(listing.shown),
        "by_status": dict(listing.by_status),
        "by_section": {name: dict(counts) for name, counts in listing.by_section.items()},
        "subscribers": [
            {
                "email": p.email,
                "name": p.name,
                "status": p.status,
                "sections": list(p.sections) if p.sections is not None else None,
                "created_at": iso(p.created_at),
                "confirmed_at": iso(p.confirmed_at),
                "paused_until": iso(p.paused_until),
            }
            for p in listing.shown
        ],
    }


@app.command("add")
def add_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    name: str | None = typer.Option(None, "--name", help="The subscriber's name."),
    sections: list[str] = typer.Option(
        [], "--section", metavar="SECTION", help="A section to get (repeat; default: all)."
    ),
    confirmed: bool = typer.Option(
        False,
        "--confirmed",
        help="Active at once, no confirmation email: you hold their consent. Needs --source.",
    ),
    source: str | None = typer.Option(
        None, "--source", metavar="TEXT", help="Where and how they opted in (the evidence)."
    ),
) -> None:
    """Subscribe one address: a confirmation email (double opt-in), or --confirmed."""
    from digest.people.audience import as_digest_errors, policy
    from digest.people.notify import send_notice
    from digest.store.db import transaction
    from subscribers.consent import Evidence, operator_evidence
    from subscribers.lifecycle import add_confirmed, staff_subscribe

    st = state(ctx)
    with as_digest_errors():  # --confirmed without --source: refused by the subscribers rule
        proof = operator_evidence(source) if confirmed else None
    keys, now, rules = st.settings.secret_keys(), _now(), policy(st.settings)
    chosen = sections or None
    notice = None
    with as_digest_errors(), transaction(st.sessions) as session:
        if proof is not None:
            changed = add_confirmed(
                session, email, evidence=proof, now=now, keys=keys, policy=rules, name=name,
                sections=chosen,
            )  # fmt: skip
            message = "is now active" if changed else "was already active; nothing changed"
        else:
            _refuse_undeliverable(session, email, keys)
            evidence = Evidence(source=source or "digest subscribers add (operator)")
            request = staff_subscribe(
                session, email, evidence=evidence, now=now, keys=keys, policy=rules, name=name,
                sections=chosen,
            )  # fmt: skip
            notice = request.notice
            message = _request_message(request.already_active, notice)
    if notice is not None and not send_notice(st.settings, notice):
        raise UsageError("the confirmation email could not be sent (see the log); try again")
    console.print(f"{shown(email.strip().lower())} {message}.", highlight=False)


def _refuse_undeliverable(session: Session, email: str, keys: list[str]) -> None:
    """The form answers a bounced or complaining address like any other (no enumeration) and
    sends nothing; an operator is told why (exit 9)."""
    from subscribers.addresses import validate_email
    from subscribers.suppression import undeliverable

    reason = undeliverable(session, validate_email(email), keys)
    if reason is not None:
        raise SubscriberStateError(
            f"{validate_email(email)} is on the suppression list ({reason}): no email, not "
            "even a confirmation, is sent to it"
        )


def _request_message(already_active: bool, notice: Notice | None) -> str:
    if already_active:
        return "is already active; nothing changed and no email was sent"
    if notice is None:
        return "is pending; no email sent (the address had its confirmation emails for now)"
    return "is pending: a confirmation email is on its way"


@app.command("remove")
def remove_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    section: str | None = typer.Option(
        None, "--section", metavar="SECTION", help="Only stop this section."
    ),
) -> None:
    """Unsubscribe an address (kept as an opt-out, so no import adds it back)."""
    from digest.people.audience import as_digest_errors, policy
    from digest.store.db import transaction
    from subscribers.lifecycle import get_by_email, unsubscribe

    st = state(ctx)
    keys, now, rules = st.settings.secret_keys(), _now(), policy(st.settings)
    with as_digest_errors(), transaction(st.sessions) as session:
        sub = get_by_email(session, email)
        changed = unsubscribe(
            session, sub, evidence=_operator(), now=now, keys=keys, policy=rules, section=section
        )
        what = f"from {section}" if section else "from everything"
        address = sub.email
    verb = "unsubscribed" if changed else "was already unsubscribed"
    console.print(f"{shown(address)} {verb} {shown(what)}.", highlight=False)


@app.command("show")
def show_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    as_json: bool = typer.Option(
        False, "--json", help="Everything held about the person (GDPR access request)."
    ),
) -> None:
    """One subscriber: state, sections, consent history and what was sent to them."""
    from digest.people.audience import as_digest_errors
    from digest.people.privacy import export_person
    from subscribers.export import json_text

    st = state(ctx)
    keys = st.settings.secret_keys()
    with as_digest_errors(), st.sessions() as session:
        record = export_person(session, email, keys)
    if as_json:
        sys.stdout.write(json_text(record, indent=2) + "\n")
        return
    _print_record(record, st.settings.publication.tz)


def _print_record(record: dict[str, Any], tz: tzinfo) -> None:
    """The record `--json` prints, for a person: times in the publication's timezone. Every
    value from outside passes through `shown`: a name, a source or a user agent is whatever
    someone typed or sent (digest/cli/safe.py)."""
    sub = record["subscriber"]
    sections = sub["sections"]
    table = Table(show_header=False, title=shown(sub["email"]))
    table.add_row("Status", sub["status"] + _pending_note(sub))
    table.add_row("Name", shown(sub["name"] or "-"))
    table.add_row("Sections", "all" if not sections else shown(", ".join(sections)))
    request = sub.get("pending_request")
    if isinstance(request, dict):
        asked = request["sections"]
        wanted = "all" if asked is None else ", ".join(map(str, asked))
        table.add_row("Asked again", shown(f"name {request['name'] or '-'}; sections {wanted}"))
    for label, key in (
        ("Subscribed", "created_at"),
        ("Confirmed", "confirmed_at"),
        ("Unsubscribed", "unsubscribed_at"),
        ("Paused until", "paused_until"),
    ):
        table.add_row(label, moment(parse_iso(sub[key]), tz))
    suppression = record["suppression"]
    table.add_row("Suppressed", _suppression(suppression, tz))
    table.add_row("Public id", shown(sub["public_id"]))
    console.print(table)
    history = Table(title="Consent history")
    for column in ("When", "Event", "Source", "IP", "Consent text"):
        history.add_column(column, overflow="fold")
    for event in record["consent_history"]:
        history.add_row(
            moment(parse_iso(event["at"]), tz),
            shown(event["event"]),
            shown(event["source"] or "-"),
            shown(event["ip"] or "-"),
            shown(event["consent_text_version"] or "-"),
        )
    console.print(history)
    deliveries = record["deliveries"]
    if not deliveries:
        console.print("No edition was sent to them.", highlight=False)
        return
    sent = Table(title="Editions sent to them")
    for column in ("Edition", "Sections", "Status", "Updated", "Error"):
        sent.add_column(column, overflow="fold")
    for d in deliveries:
        sent.add_row(
            str(d["edition_id"]),
            shown(", ".join(d["sections"]) or "-"),
            d["status"],
            moment(parse_iso(d["updated_at"]), tz),
            shown(d["error"] or ""),
        )
    console.print(sent)


def _pending_note(sub: dict[str, Any]) -> str:
    return " (waiting for them to confirm)" if sub.get("confirmation_pending") else ""


def _suppression(entry: dict[str, Any] | None, tz: tzinfo) -> str:
    """ "unsubscribed since 2026-11-20 09:00 EST": never re-added by an import."""
    if not entry:
        return "no"
    return f"yes: {entry['reason']} since {moment(parse_iso(entry['since']), tz)}"


@app.command("erase")
def erase_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete everything about a person (GDPR Art. 17), keeping only a keyed hash so that no
    import adds them back."""
    from digest.people.audience import as_digest_errors
    from digest.people.privacy import erase_person
    from digest.store.db import transaction

    st = state(ctx)
    keys = st.settings.secret_keys()
    if not yes and not typer.confirm(f"Erase {email} and their history for good?"):
        raise typer.Exit(1)
    with as_digest_errors(), transaction(st.sessions) as session:
        erase_person(session, email, now=_now(), keys=keys)
    console.print(
        f"Erased {shown(email.strip().lower())}: only a keyed hash is kept on the suppression "
        "list.",
        highlight=False,
    )


@app.command("resend")
def resend_command(
    ctx: typer.Context,
    emails: list[str] | None = typer.Argument(None, metavar="[EMAIL]..."),
    all_pending: bool = typer.Option(
        False, "--all-pending", help="Every pending subscriber (e.g. after importing them)."
    ),
) -> None:
    """Send the confirmation email again (same per-address limits as the web form)."""
    from digest.people.audience import as_digest_errors, policy
    from digest.people.notify import send_notice
    from digest.store.db import transaction
    from subscribers.lifecycle import pending_emails, resend_confirmation

    st = state(ctx)
    if not emails and not all_pending:
        raise UsageError("name at least one EMAIL, or pass --all-pending")
    keys, now, rules = st.settings.secret_keys(), _now(), policy(st.settings)
    notices: list[Notice] = []
    with as_digest_errors(), transaction(st.sessions) as session:
        targets = list(emails or []) + (pending_emails(session) if all_pending else [])
        for email in targets:
            notice = resend_confirmation(session, email, now=now, keys=keys, policy=rules)
            if notice is not None:
                notices.append(notice)
    sent = sum(send_notice(st.settings, n) for n in notices)
    console.print(
        f"{plural(sent, 'confirmation email')} sent; {len(targets) - sent:,} not (unknown, not "
        "pending, limited or refused).",
        highlight=False,
    )


@app.command("purge-pending")
def purge_command(ctx: typer.Context) -> None:
    """Delete subscribe requests nobody confirmed within [subscribers] pending_expiry_days."""
    from digest.people.audience import policy
    from digest.store.db import transaction
    from subscribers.lifecycle import purge_pending

    st = state(ctx)
    rules = policy(st.settings)
    with transaction(st.sessions) as session:
        removed = purge_pending(session, now=_now(), policy=rules)
    days = st.settings.subscribers.pending_expiry_days
    console.print(
        f"Deleted {plural(removed, 'request')} left unconfirmed for {plural(days, 'day')}.",
        highlight=False,
    )
