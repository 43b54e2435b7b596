"""The delivery loop over the ledger: freeze the audience, then claim, submit and record batches.

Every (edition, subscriber) gets a Delivery row before any provider call, so a crash never
loses track of who was mailed. Rows move planned → claimed → submitted → accepted | failed, and
each step is committed before the next. Who unsubscribes after the audience is frozen is
skipped when their batch is claimed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, EmailBackend, Recipient, RecipientStatus
from digest.config import Settings
from digest.db import transaction
from digest.edition import branding, edition_view, get_edition
from digest.errors import EditionStateError
from digest.models import (
    ACCEPTED,
    APPROVED,
    CLAIMED,
    DEFERRED,
    DRAFT,
    FAILED,
    PLANNED,
    SENDING,
    SENT,
    SKIPPED,
    SUBMITTED,
    Delivery,
    Edition,
)
from digest.render import MANAGE_URL, UNSUBSCRIBE_URL, RenderedEmail, render_edition
from subscribers.lifecycle import recipients_for
from subscribers.models import ACTIVE, Subscriber
from subscribers.tokens import MANAGE, UNSUBSCRIBE, make_token

Progress = Callable[[int], None]


@dataclass
class SendReport:
    edition_id: int
    planned: int
    counts: Counter[str] = field(default_factory=Counter)
    variants: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


def variant_key(sections: Sequence[str]) -> str:
    return "|".join(sections)


def plan(session: Session, edition: Edition, now: datetime) -> int:
    """Freeze the audience: one planned row per recipient, written in one transaction."""
    existing = session.scalar(select(func.count()).where(Delivery.edition_id == edition.id))
    if existing:
        return int(existing)
    rows = [
        {
            "edition_id": edition.id,
            "subscriber_id": a.subscriber_id,
            "email": a.email,
            "variant": variant_key(a.sections),
            "status": PLANNED,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for a in recipients_for(session, edition.sections, now)
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Delivery), rows[start : start + 5000])
    return len(rows)


def dry_run(
    factory: sessionmaker[Session], settings: Settings, edition_id: int | None, now: datetime
) -> SendReport:
    """Who would get what, each variant rendered to prove it renders; nothing is written."""
    with factory() as session:
        edition = get_edition(session, edition_id)
        variants: Counter[str] = Counter(
            variant_key(a.sections) for a in recipients_for(session, edition.sections, now)
        )
        view = edition_view(edition)
    for key in variants:
        render_edition(view, branding(settings), key.split("|"))
    return SendReport(
        edition_id=edition.id, planned=sum(variants.values()), variants=dict(variants), dry_run=True
    )


def send_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    *,
    edition_id: int | None,
    now: datetime,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendReport:
    with transaction(factory) as session:
        edition = get_edition(session, edition_id)
        if edition.status == SENT:
            raise EditionStateError(f"edition {edition.id} was already sent at {edition.sent_at}")
        if edition.status in (DRAFT, APPROVED):
            edition.status = SENDING
            edition.send_started_at = now
        planned = plan(session, edition, now)
        view = edition_view(edition)
        edition_id = edition.id
    report = SendReport(edition_id=edition_id, planned=planned)
    renders: dict[str, RenderedEmail] = {}
    keys = settings.secret_keys()
    with backend:
        for batch_rows in _claim_batches(factory, edition_id, backend.max_batch, settings, clock):
            variant = batch_rows[0].variant
            if variant not in renders:
                renders[variant] = render_edition(view, branding(settings), variant.split("|"))
                report.variants[variant] = 0
            report.variants[variant] += len(batch_rows)
            batch = _batch(settings, edition_id, renders[variant], batch_rows, keys, now)
            _mark(factory, [r.delivery_id for r in batch_rows], SUBMITTED, clock())
            statuses = backend.send_batch(batch)
            _record(factory, statuses, clock())
            report.counts.update(s.status for s in statuses)
            if progress:
                progress(len(batch_rows))
    with transaction(factory) as session:
        report.counts.update(_skipped(session, edition_id))
        edition = get_edition(session, edition_id)
        if not session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id, Delivery.status.in_((PLANNED, CLAIMED, DEFERRED))
            )
        ):
            edition.status = SENT
            edition.sent_at = clock()
    return report


@dataclass(frozen=True)
class _Row:
    delivery_id: int
    email: str
    variant: str
    public_id: str


def _claim_batches(
    factory: sessionmaker[Session],
    edition_id: int,
    size: int,
    settings: Settings,
    clock: Callable[[], datetime],
) -> Iterator[list[_Row]]:
    """Claim the next batch of one variant (committed before the provider is called)."""
    size = min(size, settings.delivery.batch_size)
    while True:
        with transaction(factory) as session:
            variant = session.scalar(
                select(Delivery.variant)
                .where(Delivery.edition_id == edition_id, Delivery.status == PLANNED)
                .order_by(Delivery.id)
                .limit(1)
            )
            if variant is None:
                return
            result = session.execute(
                select(
                    Delivery.id,
                    Delivery.email,
                    Delivery.variant,
                    Subscriber.public_id,
                    Subscriber.status,
                )
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id, isouter=True)
                .where(
                    Delivery.edition_id == edition_id,
                    Delivery.status == PLANNED,
                    Delivery.variant == variant,
                )
                .order_by(Delivery.id)
                .limit(size)
            ).all()
            now = clock()
            gone = [r.id for r in result if r.status != ACTIVE]
            rows = [
                _Row(r.id, r.email, r.variant, r.public_id) for r in result if r.status == ACTIVE
            ]
            _set(session, gone, SKIPPED, now, error="unsubscribed before their batch was sent")
            batch_id = uuid.uuid4().hex
            _set(session, [r.delivery_id for r in rows], CLAIMED, now, batch_id=batch_id)
        if rows:
            yield rows


def _batch(
    settings: Settings,
    edition_id: int,
    email: RenderedEmail,
    rows: Sequence[_Row],
    keys: Sequence[str],
    now: datetime,
) -> Batch:
    nl = settings.newsletter
    return Batch(
        batch_id=uuid.uuid4().hex,
        edition_id=edition_id,
        subject=email.subject,
        html=email.html,
        text=email.text,
        from_email=nl.from_email,
        from_name=nl.from_name,
        reply_to=nl.reply_to,
        headers={"List-Id": list_id(settings)},
        recipients=[_recipient(settings, row, keys, now) for row in rows],
    )


def list_id(settings: Settings) -> str:
    domain = settings.newsletter.from_email.rsplit("@", 1)[-1]
    slug = "".join(ch if ch.isalnum() else "-" for ch in settings.newsletter.title.lower())
    return f"{settings.newsletter.title} <{slug.strip('-')}.{domain}>"


def _recipient(settings: Settings, row: _Row, keys: Sequence[str], now: datetime) -> Recipient:
    base = settings.web.base_url
    unsubscribe = f"{base}/u/{make_token(keys, UNSUBSCRIBE, row.public_id, now)}"
    manage = f"{base}/manage/{make_token(keys, MANAGE, row.public_id, now)}"
    header = f"<{unsubscribe}>"
    if settings.delivery.unsubscribe_mailto:
        header += f", <mailto:{settings.delivery.unsubscribe_mailto}?subject=unsubscribe>"
    return Recipient(
        delivery_id=row.delivery_id,
        email=row.email,
        substitutions={UNSUBSCRIBE_URL: unsubscribe, MANAGE_URL: manage},
        headers={"List-Unsubscribe": header, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def _set(
    session: Session, ids: Sequence[int], status: str, now: datetime, **values: object
) -> None:
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(status=status, updated_at=now, **values)
        )


def _mark(factory: sessionmaker[Session], ids: Sequence[int], status: str, now: datetime) -> None:
    with transaction(factory) as session:
        _set(session, ids, status, now)


_FINAL = {"accepted": ACCEPTED, "rejected": FAILED, "failed": FAILED, "deferred": DEFERRED}


def _record(
    factory: sessionmaker[Session], statuses: Sequence[RecipientStatus], now: datetime
) -> None:
    with transaction(factory) as session:
        for s in statuses:
            session.execute(
                update(Delivery)
                .where(Delivery.id == s.delivery_id)
                .values(
                    status=_FINAL[s.status],
                    provider_message_id=s.provider_id,
                    error=s.reason,
                    attempts=Delivery.attempts + 1,
                    updated_at=now,
                )
            )


def _skipped(session: Session, edition_id: int) -> Counter[str]:
    n = session.scalar(
        select(func.count()).where(Delivery.edition_id == edition_id, Delivery.status == SKIPPED)
    )
    return Counter({"skipped": int(n or 0)}) if n else Counter()
