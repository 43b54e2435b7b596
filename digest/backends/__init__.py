"""Email backends by name; `get_backend(settings)` builds the configured one."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime

from digest.backends.base import (
    BackendConfigError,
    BackendError,
    Batch,
    EmailBackend,
    PermanentError,
    Recipient,
    RecipientStatus,
    TransientError,
)
from digest.config import Settings, https_base_url_problem
from digest.errors import ConfigError

__all__ = [
    "BackendConfigError",
    "BackendError",
    "Batch",
    "EmailBackend",
    "PermanentError",
    "Recipient",
    "RecipientStatus",
    "TransientError",
    "get_backend",
    "wire_headers",
]


def wire_headers(
    backend: str, batch: Batch, recipient: Recipient, now: datetime
) -> list[tuple[str, str]]:
    """The headers of `recipient`'s message as the named backend hands them on, raw (never
    decoded): preflight reads List-Unsubscribe here, as a receiver would. SendGrid takes them
    as JSON strings and writes them as given; smtp and the outbox write a MIME message."""
    one = dataclasses.replace(batch, recipients=[recipient])
    if backend == "sendgrid":
        from digest.backends.sendgrid_json import body_text

        message = {"subject": batch.subject, "headers": dict(batch.headers)}
        sent = json.loads(body_text(one, message))
        return [*sent["headers"].items(), *sent["personalizations"][0]["headers"].items()]
    from digest.backends.mime import build_message, raw_headers

    return raw_headers(build_message(one, recipient, now).as_bytes())


def get_backend(settings: Settings, clock: Callable[[], datetime] | None = None) -> EmailBackend:
    """The backend [delivery] backend names; a missing secret or key file is a ConfigError."""
    name = settings.delivery.backend
    problem = https_base_url_problem(settings)
    if problem:
        raise ConfigError(problem)
    try:
        if name == "outbox":
            from digest.backends.outbox import OutboxBackend

            return OutboxBackend(settings.outbox_path, clock=clock)
        if name == "sendgrid":
            return _sendgrid(settings, clock)
        if name == "smtp":
            return _smtp(settings, clock)
    except BackendConfigError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(f"[delivery] backend {name!r} is unknown (use outbox, smtp or sendgrid)")


def _sendgrid(settings: Settings, clock: Callable[[], datetime] | None) -> EmailBackend:
    from digest.backends.sendgrid import SendGridBackend

    key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
    if not key:
        raise BackendConfigError(
            "DIGEST_SENDGRID_API_KEY is not set: the sendgrid backend needs an API key "
            "with the Mail Send permission"
        )
    d = settings.delivery
    return SendGridBackend(
        key,
        d.sendgrid_host,
        timeout=d.request_timeout,
        click_tracking=d.click_tracking,
        open_tracking=d.open_tracking,
        clock=clock,
    )


def _smtp(settings: Settings, clock: Callable[[], datetime] | None) -> EmailBackend:
    from digest.backends.smtp import DkimKey, SmtpBackend

    d = settings.delivery
    dkim_key = None
    if d.dkim_key_path and d.dkim_selector:
        domain = d.dkim_domain or settings.newsletter.from_email.rsplit("@", 1)[-1]
        dkim_key = DkimKey.load(settings.resolve_path(d.dkim_key_path), d.dkim_selector, domain)
    return SmtpBackend(
        d.smtp_host,
        d.smtp_port,
        security=d.smtp_security,
        username=d.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout=d.request_timeout,
        ca_file=str(settings.resolve_path(d.smtp_ca_file)) if d.smtp_ca_file else None,
        dkim_key=dkim_key,
        clock=clock,
    )
