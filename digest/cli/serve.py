"""`digest serve [--host] [--port]`: the web app under uvicorn.

Access logs keep the path but never a link's token (a token is the only credential of the
unsubscribe and preference pages; docs/standards.md §5: "strip tokens from access logs"), nor a
staff API token someone put in a URL. digest's own log lines (where each confirmation email
went) are shown beside uvicorn's.
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
    from digest.web.listen import listen, served_settings
    from digest.web.server import options

    configured = state(ctx).settings
    bind_host, bind_port = host or configured.web.host, port or configured.web.port
    sock = listen(bind_host, bind_port)  # a port in use is one line and exit 11, before anything
    settings = served_settings(configured, bind_port)
    web = settings.web
    application = create_app(settings)
    console.print(
        f"Serving {settings.newsletter.title} on http://{bind_host}:{bind_port} "
        f"(public address {web.base_url}; Ctrl-C stops it)",
        highlight=False,
        soft_wrap=True,
    )
    if settings.delivery.backend == "outbox":
        console.print(
            f"Confirmation emails are written to {settings.outbox_path / 'transactional'}/ "
            "(the outbox backend: nothing is mailed).",
            highlight=False,
            soft_wrap=True,
        )
    config = uvicorn.Config(
        application, host=bind_host, port=bind_port, log_config=log_config(), **options(settings)
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down cleanly; Ctrl-C is how one stops it
        pass
    finally:
        sock.close()


def log_config() -> dict[str, Any]:
    """uvicorn's own logging setup, with the token filter on the access log's handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    # digest's own lines (a confirmation email handed to the backend, one that failed) go
    # where uvicorn's go, in the same format.
    config["loggers"]["digest"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
