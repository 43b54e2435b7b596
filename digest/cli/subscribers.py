"""`digest subscribers ...`: import, export, add, remove, show, erase, resend, purge-pending."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from digest.cli.common import console, err_console, state
from digest.cli.safe import shown
from digest.errors import SubscriberStateError, UsageError
from digest.people.audience import as_digest_errors, policy
from digest.store.db import transaction
from subscribers.consent import Evidence
from subscribers.models import STATUSES

# Each command imports the rest itself: an import of 100,000 rows need not wait for the mailer,
# its templates or the privacy module to load.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from subscribers.lifecycle import Notice

app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)


class Format(StrEnum):
    csv = "csv"
    json = "json"


def _now() -> datetime:
    return datetime.now(UTC)


# Consent events an operator causes from the command line.
OPERATOR = Evidence(source="digest CLI (operator)")


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
    from subscribers.importer import InvalidFile, Options, import_file

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
        hint = "" if skip_invalid else " (fix them, or pass --skip-invalid)"
        _problem(f"[bold red]error:[/] {exc}{hint}")
        raise typer.Exit(1) from None
    for error in result.errors:
        _problem(f"[yellow]skipped[/] {shown(file)}:{error.line}: {shown(error.reason)}")
    for line in result.suppressed:
        _problem(
            f"[yellow]not re-added[/] {shown(file)}:{line}: the address opted out or was erased "
            "(suppression list)"
        )
    console.print(
        f"Imported {shown(file)}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.suppressed)} suppressed, "
        f"{len(result.errors)} invalid.",
        highlight=False,
    )


def _problem(text: str) -> None:
    """One line per problem, never wrapped: `grep` and editors can jump to FILE:LINE."""
    err_console.print(text, highlight=False, soft_wrap=True)


@app.command("export")
def export_command(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.csv, "--format", help="csv (importable) or json."),
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write here instead of standard output."
    ),
    status: str | None = typer.Option(
        None, "--status", metavar="STATUS", help=f"Only this status ({', '.join(STATUSES)})."
    ),
) -> None:
    """Write every subscriber as CSV (the import's columns first) or JSON (with consent history)."""
    st = state(ctx)
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    keys = st.settings.secret_keys() if fmt is Format.json else []
    target = output.open("w", encoding="utf-8", newline="") if output else nullcontext(sys.stdout)
    with target as out, st.sessions() as session:
        count = _write(session, out, fmt, keys, status)
    if output:
        console.print(f"Wrote {count} subscriber(s) to {shown(output)}.", highlight=False)


def _write(session: Session, out: TextIO, fmt: Format, keys: list[str], status: str | None) -> int:
    from subscribers import export

    if fmt is Format.csv:
        return export.write_csv(session, out, status)
    return export.write_json(session, out, keys, status)


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
    from digest.people.notify import send_notice
    from subscribers.consent import operator_evidence
    from subscribers.lifecycle import add_confirmed, subscribe

    st = state(ctx)
    with as_digest_errors():  # --confirmed without --source: refused by the subscribers rule
        proof = operator_evidence(source) if confirmed else None
    keys, now, rules = st.settings.secret_keys(), _now(), policy(st.settings)
    chosen = sections or None
    with as_digest_errors(), transaction(st.sessions) as session:
        if proof is not None:
            evidence = proof
            changed = add_confirmed(
                session,
                email,
                evidence=evidence,
                now=now,
                keys=keys,
                policy=rules,
                name=name,
                sections=chosen,
            )
            message = "is now active" if changed else "was already active; nothing changed"
            notice = None
        else:
            _refuse_undeliverable(session, email, keys)
            evidence = Evidence(source=source or "digest subscribers add (operator)")
            notice = subscribe(
                session,
                email,
                evidence=evidence,
                now=now,
                keys=keys,
                policy=rules,
                name=name,
                sections=chosen,
            )
            message = _notice_message(notice)
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


def _notice_message(notice: Notice | None) -> str:
    from subscribers.lifecycle import CONFIRMATION

    if notice is None:
        return "is pending; no email sent (the address had its confirmation emails for now)"
    if notice.kind == CONFIRMATION:
        return "is pending: a confirmation email is on its way"
    return "is already active: they were sent a link to their preferences"


@app.command("remove")
def remove_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    section: str | None = typer.Option(
        None, "--section", metavar="SECTION", help="Only stop this section."
    ),
) -> None:
    """Unsubscribe an address (kept as an opt-out, so no import adds it back)."""
    from subscribers.lifecycle import get_by_email, unsubscribe

    st = state(ctx)
    keys, now, rules = st.settings.secret_keys(), _now(), policy(st.settings)
    with as_digest_errors(), transaction(st.sessions) as session:
        sub = get_by_email(session, email)
        changed = unsubscribe(
            session, sub, evidence=OPERATOR, now=now, keys=keys, policy=rules, section=section
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
    """One subscriber: state, sections and consent history."""
    from digest.people.privacy import export_person
    from subscribers.export import json_text

    st = state(ctx)
    keys = st.settings.secret_keys()
    with as_digest_errors(), st.sessions() as session:
        record = export_person(session, email, keys)
    if as_json:
        sys.stdout.write(json_text(record, indent=2) + "\n")
        return
    _print_record(record)


def _print_record(record: dict[str, object]) -> None:
    """The record as two tables. Every value passes through `shown`: a name, a source or a
    user agent is whatever someone typed or sent (digest/cli/safe.py)."""
    from rich.table import Table

    sub = record["subscriber"]
    assert isinstance(sub, dict)
    sections = sub["sections"]
    table = Table(show_header=False, title=shown(sub["email"]))
    for key in (
        "status",
        "name",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "paused_until",
        "public_id",
    ):
        table.add_row(key, shown(sub[key] or "-"))
    table.add_row("sections", "all" if sections is None else shown(", ".join(map(str, sections))))
    request = sub.get("pending_request")
    if isinstance(request, dict):
        asked = request["sections"]
        wanted = "all" if asked is None else ", ".join(map(str, asked))
        table.add_row("pending request", shown(f"name {request['name'] or '-'}; sections {wanted}"))
    suppression = record["suppression"]
    table.add_row("suppressed", "no" if not suppression else shown(suppression))
    console.print(table)
    history = Table(title="Consent history")
    for column in ("at", "event", "source", "ip", "consent text"):
        history.add_column(column)
    events = record["consent_history"]
    assert isinstance(events, list)
    for event in events:
        history.add_row(
            shown(event["at"]),
            shown(event["event"]),
            shown(event["source"]),
            shown(event["ip"] or "-"),
            shown(event["consent_text_version"] or "-"),
        )
    console.print(history)


@app.command("erase")
def erase_command(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete everything about a person (GDPR Art. 17), keeping only a keyed hash so that no
    import adds them back."""
    from digest.people.privacy import erase_person

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
    from digest.people.notify import send_notice
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
        f"{sent} confirmation email(s) sent; {len(targets) - sent} not (unknown, not pending, "
        "limited or refused).",
        highlight=False,
    )


@app.command("purge-pending")
def purge_command(ctx: typer.Context) -> None:
    """Delete subscribe requests nobody confirmed within [subscribers] pending_expiry_days."""
    from subscribers.lifecycle import purge_pending

    st = state(ctx)
    rules = policy(st.settings)
    with transaction(st.sessions) as session:
        removed = purge_pending(session, now=_now(), policy=rules)
    days = st.settings.subscribers.pending_expiry_days
    console.print(f"Deleted {removed} request(s) left unconfirmed for {days} days.")
