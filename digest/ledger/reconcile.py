"""What an ESP event means for a ledger row, and settling uncertain rows after a crash.

A row left `submitted` by a crashed worker is uncertain: the provider may or may not have the
message. SendGrid's Event Webhook answers that question per recipient, matched by the
`custom_args` {edition, delivery} every message carries (docs/design.md §3):

- processed, delivered, deferred, open, click → the provider had it: accepted;
- dropped, bounce (hard or blocked) → it was not delivered: failed, with the provider's reason.

Rows no event speaks for stay uncertain; only `digest send --resend-uncertain` sends them again
(a newsletter prefers a rare miss to a duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.ledger import moves
from digest.store.models import ACCEPTED, FAILED, SUBMITTED, WebhookEvent

CONFIRMS = frozenset({"processed", "delivered", "deferred", "open", "click"})
FAILS = frozenset({"dropped", "bounce"})
LEDGER_EVENTS = CONFIRMS | FAILS


@dataclass
class Reconciled:
    accepted: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)


def failure_reason(event: str, detail: str | None) -> str:
    return f"{event}: {detail}" if detail else event


def apply(
    session: Session, delivery_id: int, event: str, detail: str | None, now: datetime
) -> None:
    """One event's effect on its row. A failure wins over an earlier acceptance (SendGrid took
    the message, then the receiver bounced it); a confirmation only settles a submitted row."""
    if event in CONFIRMS:
        moves.move_ids(session, [delivery_id], SUBMITTED, ACCEPTED, now)
    elif event in FAILS:
        reason = failure_reason(event, detail)
        for status in (SUBMITTED, ACCEPTED):
            moves.move_ids(session, [delivery_id], status, FAILED, now, error=reason)


def reconcile(session: Session, delivery_ids: Sequence[int], now: datetime) -> Reconciled:
    """Settle uncertain rows from the events already received for them."""
    result = Reconciled()
    events: dict[int, list[tuple[str, str | None]]] = {}
    for start in range(0, len(delivery_ids), 1000):
        chunk = delivery_ids[start : start + 1000]
        rows = session.execute(
            select(WebhookEvent.delivery_id, WebhookEvent.event, WebhookEvent.detail)
            .where(
                WebhookEvent.delivery_id.in_(chunk),
                WebhookEvent.event.in_(sorted(LEDGER_EVENTS)),
            )
            .order_by(WebhookEvent.id)
        )
        for delivery_id, event, detail in rows:
            if delivery_id is not None:
                events.setdefault(delivery_id, []).append((event, detail))
    for delivery_id in delivery_ids:
        seen = events.get(delivery_id, [])
        failure = next(((e, d) for e, d in seen if e in FAILS), None)
        if failure is not None:
            moves.move_ids(
                session, [delivery_id], SUBMITTED, FAILED, now, error=failure_reason(*failure)
            )
            result.failed.append(delivery_id)
        elif seen:
            moves.move_ids(session, [delivery_id], SUBMITTED, ACCEPTED, now)
            result.accepted.append(delivery_id)
        else:
            result.uncertain.append(delivery_id)
    return result
