"""The backend interface (after anymail): one rendered body per batch, a normalised result per
recipient. The send engine (`send/`) talks only to this; it never imports sendgrid or smtplib.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal, NamedTuple

Status = Literal["accepted", "deferred", "rejected", "failed"]


_NONE: Mapping[str, str] = MappingProxyType({})


class Recipient(NamedTuple):
    """One addressee of a batch, with the values for the body's per-recipient placeholders.

    (NamedTuples, not dataclasses: a send makes millions of these.)
    """

    delivery_id: int
    email: str
    substitutions: Mapping[str, str] = _NONE
    # Per-recipient headers, e.g. List-Unsubscribe with this recipient's token.
    headers: Mapping[str, str] = _NONE


def personalise(body: str, values: dict[str, str]) -> str:
    """Fill a body's per-recipient placeholders with a Recipient's `substitutions`: what
    SendGrid does server-side, for the backends that write each message themselves."""
    for key, value in values.items():
        body = body.replace(key, value)
    return body


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
    # A `digest send --test-to` batch: not in the ledger, so its events match no delivery.
    test: bool = False
    # Mail to one person about their subscription (a confirmation link), not an edition.
    transactional: bool = False


class RecipientStatus(NamedTuple):
    """A provider's answer for one recipient, normalised; `reason` keeps the provider's words."""

    delivery_id: int
    status: Status
    provider_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None


class BackendError(Exception):
    """A backend could not do its job at all (as opposed to refusing some recipients)."""


class BackendConfigError(BackendError):
    """A setting the backend needs is missing or wrong, or the provider refused our credentials
    (401/403): nothing was sent and nothing will be until a person fixes it."""


class TransientError(BackendError):
    """The provider did not take the batch this time (429, 5xx, timeout, connection error);
    the same batch may be tried again later.

    `retry_after` is the provider's own wait in seconds (Retry-After / X-RateLimit-Reset), if it
    said. `maybe_sent` is true when the request may have reached the provider before failing (a
    read timeout): retrying it can duplicate mail.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, maybe_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class PermanentError(BackendError):
    """The provider refused the whole batch and will refuse it again as it is (400, 413).

    `message` keeps the provider's words. `bad_index` is the position in `batch.recipients` of the
    recipient the provider blamed, when its answer says (SendGrid's error `field`), so the sender
    can drop that one and send the rest; otherwise the sender splits the batch in halves.
    """

    def __init__(self, message: str, *, bad_index: int | None = None) -> None:
        super().__init__(message)
        self.bad_index = bad_index


class EmailBackend(ABC):
    name: ClassVar[str]
    max_batch: ClassVar[int] = 1000

    def open(self) -> None:  # noqa: B027 (optional hook, deliberately a no-op)
        """Acquire connections; idempotent. The default backend needs none."""

    def close(self) -> None:  # noqa: B027
        """Release what open() acquired; idempotent."""

    @abstractmethod
    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send one body to every recipient; return one status per recipient, in any order.

        A recipient left out of the answer is *uncertain*: the backend cannot tell whether the
        provider took it (a connection lost after DATA), so the ledger keeps it `submitted` for
        reconciliation rather than risk a duplicate. Raise TransientError or PermanentError when
        the provider refused the batch as a whole, BackendConfigError for bad credentials.
        """

    def __enter__(self) -> EmailBackend:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
