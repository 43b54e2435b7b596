"""`digest staff ...`: the people who may use the console and the API, and their API tokens.

Heavy imports (argon2, the database) happen inside each command, so `digest --help` and the
other commands do not pay for them.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from digest.cli.common import console, err_console, state
from digest.errors import UsageError

app = typer.Typer(
    help="Staff accounts (editors and publishers) and their API tokens.", no_args_is_help=True
)

PASSWORD_VARIABLE = "DIGEST_STAFF_PASSWORD"


def _password() -> str:
    """DIGEST_STAFF_PASSWORD when set (scripts), else asked twice without echo."""
    given = os.environ.get(PASSWORD_VARIABLE)
    if given is not None:
        return given
    if not sys.stdin.isatty():
        raise UsageError(
            f"no password: set {PASSWORD_VARIABLE}, or run this in a terminal to be asked for one"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@app.command("add")
def add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The staff member's email address (their login)."),
    role: str = typer.Option(
        ...,
        "--role",
        metavar="editor|publisher",
        help="editor: read, edit drafts, send tests; publisher: also approve, send and cancel.",
    ),
) -> None:
    """Add a staff member. The password comes from DIGEST_STAFF_PASSWORD, else it is asked."""
    from digest.staff import accounts
    from digest.store.db import transaction

    st = state(ctx)
    accounts.staff_email(email)  # a mistyped address or role before asking for a password
    accounts.check_role(role)
    password = _password()
    with transaction(st.sessions) as session:
        member = accounts.add(session, email, role, password, datetime.now(UTC))
        address = member.email
    console.print(f"Added {escape(address)} ({role}).", highlight=False)


@app.command("list")
def list_staff(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the staff and tokens as JSON."),
) -> None:
    """Every staff member and every API token (never the tokens themselves)."""
    from digest.staff import accounts, tokens

    with state(ctx).sessions() as session:
        people = accounts.listing(session)
        issued = tokens.listing(session)
    if as_json:
        data: dict[str, Any] = {
            "staff": [
                {
                    "email": p.email,
                    "role": p.role,
                    "created_at": p.created_at.isoformat(),
                    "last_login_at": p.last_login_at.isoformat() if p.last_login_at else None,
                    "tokens": p.tokens,
                }
                for p in people
            ],
            "tokens": [
                {
                    "id": t.id,
                    "email": t.email,
                    "name": t.name,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in issued
            ],
        }
        console.print_json(json.dumps(data))
        return
    if not people:
        console.print("No staff yet: `digest staff add EMAIL --role publisher`.")
        return
    table = Table(title="Staff")
    for column in ("Email", "Role", "Added", "Last sign-in", "Live tokens"):
        table.add_column(column)
    for p in people:
        table.add_row(
            escape(p.email), p.role, _when(p.created_at), _when(p.last_login_at), str(p.tokens)
        )
    console.print(table)
    if issued:
        tokens_table = Table(title="API tokens")
        for column in ("ID", "Staff", "Name", "Created", "Last used", "Revoked"):
            tokens_table.add_column(column)
        for t in issued:
            tokens_table.add_row(
                str(t.id),
                escape(t.email),
                escape(t.name),
                _when(t.created_at),
                _when(t.last_used_at),
                _when(t.revoked_at),
            )
        console.print(tokens_table)


@app.command("remove")
def remove(
    ctx: typer.Context, email: str = typer.Argument(..., help="The staff member's email.")
) -> None:
    """Remove a staff member: their tokens and sessions stop working at once."""
    from digest.staff import accounts
    from digest.store.db import transaction

    with transaction(state(ctx).sessions) as session:
        member = accounts.remove(session, email)
        address = member.email
    console.print(
        f"Removed {escape(address)}; their API tokens and sessions no longer work.",
        highlight=False,
    )


@app.command("password")
def password(
    ctx: typer.Context, email: str = typer.Argument(..., help="The staff member's email.")
) -> None:
    """Set a new password (DIGEST_STAFF_PASSWORD, else asked); signs them out everywhere."""
    from digest.staff import accounts
    from digest.store.db import transaction

    st = state(ctx)
    with st.sessions() as session:
        address = accounts.find(session, email).email
    new = _password()
    with transaction(st.sessions) as session:
        accounts.set_password(session, address, new, datetime.now(UTC))
    console.print(
        f"New password set for {escape(address)}; their console sessions ended.",
        highlight=False,
    )


@app.command("token")
def token(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The staff member the token acts as."),
    name: str | None = typer.Option(
        None, "--name", metavar="LABEL", help="What the token is for (e.g. 'CMS plugin')."
    ),
) -> None:
    """Make an API token and print it once (only its hash is kept)."""
    from digest.staff import tokens
    from digest.store.db import transaction

    with transaction(state(ctx).sessions) as session:
        row, secret = tokens.issue(session, email, name, datetime.now(UTC))
        token_id, label = row.id, row.name
    console.print(secret, highlight=False, soft_wrap=True)
    err_console.print(
        f"API token {token_id} ({escape(label)}): shown once, store it now. Send it as "
        f"`Authorization: Bearer TOKEN`; revoke it with `digest staff revoke {token_id}`.",
        highlight=False,
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: int = typer.Argument(
        ..., metavar="TOKEN-ID", help="The id `digest staff list` shows."
    ),
) -> None:
    """Revoke an API token: requests with it are refused from now on."""
    from digest.staff import tokens
    from digest.store.db import transaction

    with transaction(state(ctx).sessions) as session:
        row, was_live = tokens.revoke(session, token_id, datetime.now(UTC))
        label = row.name
    if was_live:
        console.print(f"Revoked API token {token_id} ({escape(label)}).", highlight=False)
    else:
        console.print(f"API token {token_id} ({escape(label)}) was already revoked.")
