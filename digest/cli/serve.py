"""`digest serve [--host] [--port]`: the web app under uvicorn.

Access logs keep the path but never a link's token (a token is the only credential of the
unsubscribe and preference pages; docs/standards.md §5: "strip tokens from access logs"), nor a
staff API token someone put in a URL.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import typer

from digest.cli.common import console, state
from digest.web.logs import redact

__all__ = ["RedactTokens", "redact", "register", "serve"]


class RedactTokens(logging.Filter):
    """Rewrites uvicorn's access-log record: /u/<token> -> /u/[token]."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Interface (default: [web] host)."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port (default: [web] port)."
    ),
) -> None:
    """Run the subscriber web app: subscribe form, confirmation, preferences, unsubscribe."""
    import uvicorn

    # Here: other commands need not import the web stack.
    from digest.web.app import create_app
    from digest.web.server import options

    settings = state(ctx).settings
    web = settings.web
    application = create_app(settings)
    bind_host, bind_port = host or web.host, port or web.port
    console.print(
        f"Serving {settings.newsletter.title} on http://{bind_host}:{bind_port} "
        f"(public address {web.base_url})",
        highlight=False,
    )
    uvicorn.run(
        application, host=bind_host, port=bind_port, log_config=log_config(), **options(settings)
    )


def log_config() -> dict[str, Any]:
    """uvicorn's own logging setup, with the token filter on the access log's handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config
