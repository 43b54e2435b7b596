"""The backend interface (after anymail): one rendered body per batch, a normalised result per
recipient. The send engine (`send/`) talks only to this; it never imports sendgrid or smtplib.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal, NamedTuple, overload

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


# A value every recipient of a batch has, written once: literal text, and the index of one of the
# recipient's own strings (its tokens) wherever they go: ("https://x/u/", 0) is "https://x/u/"
# followed by the recipient's first string.
Pattern = tuple[str | int, ...]


def fill(pattern: Pattern, own: Sequence[str]) -> str:
    """`pattern` with one recipient's own strings put in."""
    return "".join(part if isinstance(part, str) else own[part] for part in pattern)


class RecipientTable(Sequence[Recipient]):
    """A batch's recipients as columns: ids, addresses and each one's own strings (its tokens),
    with the substitutions and headers every recipient has written once, as patterns over
    those strings.

    A send makes a million recipients: a backend that writes its request from the columns
    (sendgrid_json, the MIME templates) never builds a Recipient or two dicts per person. To
    everything else the table is a sequence of Recipients, made when asked for.
    """

    __slots__ = ("emails", "ids", "own", "patterns")

    def __init__(
        self,
        ids: Sequence[int],
        emails: Sequence[str],
        own: Sequence[Sequence[str]],
        patterns: Patterns,
    ) -> None:
        if not len(ids) == len(emails) == len(own):
            raise ValueError("every column of a RecipientTable has one entry per recipient")
        self.ids = ids
        self.emails = emails
        self.own = own
        self.patterns = patterns

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Recipient: ...

    @overload
    def __getitem__(self, index: slice) -> RecipientTable: ...

    def __getitem__(self, index: int | slice) -> Recipient | RecipientTable:
        if isinstance(index, slice):
            return RecipientTable(
                self.ids[index], self.emails[index], self.own[index], self.patterns
            )
        own = self.own[index]
        p = self.patterns
        return Recipient(
            self.ids[index],
            self.emails[index],
            {key: fill(pattern, own) for key, pattern in p.substitutions.items()},
            {name: fill(pattern, own) for name, pattern in p.headers.items()},
        )

    def __iter__(self) -> Iterator[Recipient]:
        for index in range(len(self.ids)):
            yield self[index]


@dataclass(frozen=True)
class Patterns:
    """The substitutions and headers of every recipient of a RecipientTable, as patterns."""

    substitutions: Mapping[str, Pattern]
    headers: Mapping[str, Pattern]


def delivery_ids(recipients: Sequence[Recipient]) -> Sequence[int]:
    """The recipients' delivery ids, without building a Recipient for each."""
    if isinstance(recipients, RecipientTable):
        return recipients.ids
    return [r.delivery_id for r in recipients]


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


class SameAnswer(Sequence[RecipientStatus]):
    """One answer for every recipient of a batch (SendGrid's 202: one message id per request),
    kept once: the send records it with one UPDATE and no status per recipient is built."""

    __slots__ = ("answer", "ids")

    def __init__(self, ids: Sequence[int], answer: RecipientStatus) -> None:
        self.ids = ids
        self.answer = answer

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> RecipientStatus: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RecipientStatus]: ...

    def __getitem__(self, index: int | slice) -> RecipientStatus | Sequence[RecipientStatus]:
        if isinstance(index, slice):
            return SameAnswer(self.ids[index], self.answer)
        return self.answer._replace(delivery_id=self.ids[index])


def answer_all(
    recipients: Sequence[Recipient],
    status: Status,
    provider_id: str | None = None,
    reason: str | None = None,
) -> SameAnswer:
    """The same answer for every recipient of a batch."""
    ids = delivery_ids(recipients)
    return SameAnswer(ids, RecipientStatus(ids[0] if ids else 0, status, provider_id, reason))


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
    # Most batches this backend sends at once, whatever [delivery] concurrency says.
    max_concurrency: ClassVar[int] = 256

    def open(self) -> None:  # noqa: B027 (optional hook, deliberately a no-op)
        """Acquire connections; idempotent. The default backend needs none."""

    def close(self) -> None:  # noqa: B027
        """Release what open() acquired; idempotent."""

    @abstractmethod
    def send_batch(self, batch: Batch) -> Sequence[RecipientStatus]:
        """Send one body to every recipient; return one status per recipient, in any order
        (`answer_all` when every recipient got the same answer). Called from several threads
        at once (one per batch in flight, up to `max_concurrency`): anything shared between
        calls needs a lock or a copy per thread.

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
