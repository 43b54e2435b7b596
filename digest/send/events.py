"""SendGrid Event Webhook events → the ledger, suppressions and engagement counters.

Rules (docs/standards.md §3 "Event Webhook" and its suppression policy):
- each event is processed once: deduplicated on `sg_event_id` (SendGrid repeats events);
- processed/delivered/deferred/dropped/bounce settle the delivery named by custom_args
  {edition, delivery} (reconcile.apply);
- hard bounce, spamreport, unsubscribe / group_unsubscribe, and dropped for a suppression
  reason suppress the subscriber at once; `blocked` bounces only count, up to a threshold;
- opens and clicks are counted per edition, clicks also per link; machine opens (Apple Mail
  Privacy Protection, `sg_machine_open`) are counted apart, since nobody read anything. Only
  events naming one of our deliveries count: `digest send --test-to` mail carries
  {edition, delivery: "test"} and is not part of the edition's audience;
- an event is attributed to the subscriber of its delivery, else to the subscriber with its
  address (test mail, events without custom_args), so `blocked` bounces count either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.ledger import reconcile, registry
from digest.people.privacy import ERASED_ADDRESS, scrub, spellings
from digest.send.eventdata import SendGridEvent, validate_event
from digest.store.models import Delivery, EditionSend, LinkClick, WebhookEvent
from subscribers.lifecycle import find_by_email, suppress
from subscribers.models import Subscriber

# dropped reasons that mean "never mail this address again", and what we record.
DROP_SUPPRESSES = {
    "bounced address": "bounced",
    "invalid": "bounced",
    "spam reporting address": "complained",
    "unsubscribed address": "unsubscribed",
}
MAX_DETAIL = 1000


@dataclass
class EventResult:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    invalid: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class _Event:
    sg_event_id: str
    kind: str
    email: str
    edition_id: int | None
    delivery_id: int | None
    detail: str | None
    occurred_at: datetime | None
    data: SendGridEvent


def process(
    session: Session, events: list[Any], *, now: datetime, keys: list[str], blocked_threshold: int
) -> EventResult:
    result = EventResult(received=len(events))
    registry.write_first(session)
    for raw in events:
        event = _parse(raw)
        if event is None:
            result.invalid += 1
            continue
        delivery = _delivery(session, event)
        event = _without_erased_address(event, delivery)
        subscriber = _subscriber(session, delivery, event.email)
        if not _remember(session, event, delivery, subscriber, now):
            result.duplicates += 1
            continue
        result.new += 1
        if delivery is not None and event.kind in reconcile.LEDGER_EVENTS:
            reconcile.apply(session, delivery.id, event.kind, event.detail, now)
        reason = _suppression(session, event, subscriber, blocked_threshold)
        if subscriber is not None and reason is not None:
            suppress(
                session, subscriber, reason, now=now, keys=keys,
                source=f"sendgrid event webhook: {event.kind}",
            )  # fmt: skip
            result.suppressed += 1
        if delivery is not None:
            _count(session, delivery.edition_id, event)
    return result


def _parse(raw: Any) -> _Event | None:
    """The event as digest reads it, or None when a field does not fit (digest.send.eventdata
    checks each field's type and range)."""
    data = validate_event(raw)
    if data is None:
        return None
    kind = data.event
    if kind == "bounce":
        detail = f"{data.type or 'bounce'}: {data.reason or ''}".strip(": ")
    elif kind == "dropped":
        detail = data.reason or ""
    elif kind == "click":
        detail = data.url or ""
    else:
        detail = None
    return _Event(
        sg_event_id=data.sg_event_id,
        kind=kind,
        email=data.email,
        edition_id=data.edition,
        delivery_id=data.delivery,
        detail=detail[:MAX_DETAIL] if detail else None,
        occurred_at=data.occurred_at,
        data=data,
    )


def _delivery(session: Session, event: _Event) -> Delivery | None:
    """The ledger row the event's custom_args name, if they name one of ours consistently."""
    if event.delivery_id is None:
        return None
    row = session.get(Delivery, event.delivery_id)
    if row is None or row.edition_id != event.edition_id:
        return None
    return row


def _without_erased_address(event: _Event, delivery: Delivery | None) -> _Event:
    """A late event for an erased person's delivery must not write their address back into
    the ledger or the stored events (a bounce reason often quotes the recipient)."""
    if delivery is None or delivery.email != ERASED_ADDRESS or not event.detail:
        return event
    return replace(event, detail=scrub(event.detail, spellings(event.email)))


def _remember(
    session: Session,
    event: _Event,
    delivery: Delivery | None,
    subscriber: Subscriber | None,
    now: datetime,
) -> bool:
    """Store the event unless its sg_event_id was seen; True when it is new. Race-free: two
    webhook requests with the same event cannot both insert it."""
    dialect = session.get_bind().dialect.name
    values = {
        "sg_event_id": event.sg_event_id,
        "event": event.kind,
        "edition_id": delivery.edition_id if delivery else event.edition_id,
        "delivery_id": delivery.id if delivery else None,
        "subscriber_id": subscriber.id if subscriber else None,
        "detail": event.detail,
        "occurred_at": event.occurred_at,
        "received_at": now,
    }
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(WebhookEvent).values(**values).on_conflict_do_nothing(index_elements=["sg_event_id"])
    )
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def _subscriber(session: Session, delivery: Delivery | None, email: str) -> Subscriber | None:
    """Whom the event is about: its delivery's subscriber, else whoever has its address (a
    test send, an event without custom_args), so that its effects reach them too."""
    if delivery is not None and delivery.subscriber_id is not None:
        return session.get(Subscriber, delivery.subscriber_id)
    return find_by_email(session, email) if email.strip() else None


def _suppression(
    session: Session, event: _Event, subscriber: Subscriber | None, blocked_threshold: int
) -> str | None:
    """The suppression reason this event calls for, if any."""
    kind, data = event.kind, event.data
    if kind == "spamreport":
        return "complained"
    if kind in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribed"
    if kind == "dropped":
        return DROP_SUPPRESSES.get((data.reason or "").strip().lower())
    if kind != "bounce":
        return None
    if (data.type or "bounce") != "blocked":
        return "bounced"
    if subscriber is None:
        return None
    blocked = session.scalar(
        select(func.count()).where(
            WebhookEvent.subscriber_id == subscriber.id,
            WebhookEvent.event == "bounce",
            WebhookEvent.detail.like("blocked%"),
        )
    )
    return "bounced" if int(blocked or 0) >= blocked_threshold else None


def _count(session: Session, edition_id: int, event: _Event) -> None:
    """Engagement of the edition's audience: called only for events naming one of our
    deliveries, so test sends and stray custom_args never inflate the counts."""
    if event.kind not in ("open", "click"):
        return
    where = EditionSend.edition_id == edition_id
    if event.kind == "open":
        column = "machine_opens" if event.data.sg_machine_open else "opens"
        session.execute(
            update(EditionSend).where(where).values({column: getattr(EditionSend, column) + 1})
        )
        return
    session.execute(update(EditionSend).where(where).values(clicks=EditionSend.clicks + 1))
    if event.detail and session.get(EditionSend, edition_id) is not None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(LinkClick).values(
            edition_id=edition_id, url=event.detail[:2000], clicks=1
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["edition_id", "url"], set_={"clicks": LinkClick.clicks + 1}
            )
        )
