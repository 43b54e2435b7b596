"""`digest db upgrade`."""

from __future__ import annotations

import typer

from digest.cli.common import console, state

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Create or migrate the database schema to the newest version (safe to repeat)."""
    from digest.store.db import current_heads, make_engine, upgrade

    settings = state(ctx).settings
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        heads = ", ".join(sorted(current_heads(engine)))
    finally:
        engine.dispose()
    console.print(f"Database {engine.url.render_as_string(hide_password=True)} is at {heads}.")
