"""The backend interface (after anymail): one rendered body per batch, a normalised result per
recipient. `send.py` talks only to this; it never imports sendgrid or smtplib.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Status = Literal["accepted", "deferred", "rejected", "failed"]


@dataclass(frozen=True)
class Recipient:
    """One addressee of a batch, with the values for the body's per-recipient placeholders."""

    delivery_id: int
    email: str
    substitutions: Mapping[str, str] = field(default_factory=dict)
    # Per-recipient headers, e.g. List-Unsubscribe with this recipient's token.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """One body, many recipients: what a backend sends in one go."""

    batch_id: str
    edition_id: int
    subject: str
    html: str
    text: str
    from_email: str
    recipients: Sequence[Recipient]
    from_name: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecipientStatus:
    """A provider's answer for one recipient, normalised; `reason` keeps the provider's words."""

    delivery_id: int
    status: Status
    provider_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None


class BackendError(Exception):
    """A backend could not do its job at all (as opposed to refusing some recipients)."""


class BackendConfigError(BackendError):
    """A setting the backend needs is missing or wrong; the message names it."""


class EmailBackend(ABC):
    name: ClassVar[str]
    max_batch: ClassVar[int] = 1000

    def open(self) -> None:  # noqa: B027 (optional hook, deliberately a no-op)
        """Acquire connections; idempotent. The default backend needs none."""

    def close(self) -> None:  # noqa: B027
        """Release what open() acquired; idempotent."""

    @abstractmethod
    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send one body to every recipient; return one status per recipient, in any order."""

    def __enter__(self) -> EmailBackend:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
