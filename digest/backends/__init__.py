"""Email backends by name; `get_backend(settings)` builds the configured one."""

from __future__ import annotations

from digest.backends.base import (
    Batch,
    EmailBackend,
    Recipient,
    RecipientStatus,
)
from digest.config import Settings
from digest.errors import ConfigError

__all__ = ["Batch", "EmailBackend", "Recipient", "RecipientStatus", "get_backend"]


def get_backend(settings: Settings) -> EmailBackend:
    name = settings.delivery.backend
    if name == "outbox":
        from digest.backends.outbox import OutboxBackend

        return OutboxBackend(settings.outbox_path)
    raise ConfigError(
        f"[delivery] backend {name!r} is not available in this version (use 'outbox')"
    )
