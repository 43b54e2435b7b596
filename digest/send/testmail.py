"""A staff member's "send a test to ...", as the API and the console take it: a few addresses
checked one by one, then the whole edition to them outside the ledger (engine.send_test, which
keeps the test in the edition's history), and what the provider said about each address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import BackendError, EmailBackend
from digest.config import Settings
from digest.edition.queries import get_edition
from digest.errors import DeliveryError, UsageError
from digest.send import engine
from subscribers.addresses import validate_email
from subscribers.errors import InvalidEmail

# A test goes to the people checking it, not to a list.
MAX_ADDRESSES = 10
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class TestResult:
    email: str
    status: str  # the provider's answer: accepted, deferred, rejected, failed
    reason: str | None


@dataclass(frozen=True)
class TestSent:
    edition_id: int
    subject: str
    results: list[TestResult]

    @property
    def ok(self) -> bool:
        return all(r.status == "accepted" for r in self.results)


def split(text: str) -> list[str]:
    """Addresses as typed in one box: separated by commas, semicolons, spaces or lines."""
    return [part for part in _SEPARATORS.split(text) if part]


def addresses(values: Iterable[str]) -> list[str]:
    """The addresses, normalised and without repeats; the first one that is not an address is
    a UsageError naming it."""
    found: list[str] = []
    for value in values:
        try:
            address = validate_email(value.strip())
        except InvalidEmail as exc:
            raise UsageError(f"{value.strip()!r} is not an email address: {exc}") from None
        if address not in found:
            found.append(address)
    if not found:
        raise UsageError("name at least one address for the test, e.g. you@example.com")
    if len(found) > MAX_ADDRESSES:
        raise UsageError(f"a test goes to at most {MAX_ADDRESSES} addresses ({len(found)} given)")
    return found


def send_test_to(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    edition_id: int,
    to: list[str],
    now: datetime,
    actor: str,
) -> TestSent:
    """The edition to `to` (already checked by `addresses`); a provider that fails the whole
    request is a DeliveryError."""
    with factory() as session:
        get_edition(session, edition_id)  # an unknown edition: NotFoundError, nothing sent
    try:
        batch, statuses = engine.send_test(settings, backend, factory, edition_id, to, now, actor)
    except BackendError as exc:
        raise DeliveryError(f"the test was not sent: {exc}") from None
    emails = {r.delivery_id: r.email for r in batch.recipients}
    results = [
        TestResult(emails[s.delivery_id], str(s.status), s.reason)
        for s in sorted(statuses, key=lambda s: s.delivery_id)
    ]
    return TestSent(edition_id, batch.subject, results)
