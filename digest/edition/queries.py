"""Reading editions back: the one way every face and the engine find an edition."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.edition.lifecycle import send_window
from digest.errors import NotFoundError
from digest.ledger.moves import variant_key
from digest.store.models import SENDING, SENT, Delivery, Edition
from subscribers.audience import choices, sections_for


def get_edition(session: Session, edition_id: int | None) -> Edition:
    """The given edition, or the newest one when no id is given."""
    query = select(Edition).options(selectinload(Edition.items))
    if edition_id is None:
        edition = session.scalar(query.order_by(Edition.cutoff.desc(), Edition.id.desc()).limit(1))
        if edition is None:
            raise NotFoundError("no edition yet: run `digest build` first")
        return edition
    edition = session.scalar(query.where(Edition.id == edition_id))
    if edition is None:
        raise NotFoundError(f"no edition with id {edition_id}")
    return edition


def list_editions(session: Session, limit: int = 200) -> list[Edition]:
    """Newest week first."""
    query = select(Edition).order_by(Edition.cutoff.desc(), Edition.id.desc()).limit(limit)
    return list(session.scalars(query))


def variant_counts(session: Session, edition: Edition, now: datetime) -> dict[str, int]:
    """Recipients per variant (the sections a reader gets): the ledger's for a send begun, else
    who would get it if it were sent now."""
    if edition.status in (SENDING, SENT):
        rows = select(Delivery.variant, func.count()).where(Delivery.edition_id == edition.id)
        found = session.execute(rows.group_by(Delivery.variant))
        return {str(variant): int(n) for variant, n in found}
    wanted = tuple(edition.sections)
    counts: Counter[str] = Counter()
    for chosen, n in choices(session, now):
        mine = sections_for(wanted, chosen)
        if mine:
            counts[variant_key(mine)] += n
    return dict(sorted(counts.items()))


def describe(
    session: Session, edition: Edition, settings: Settings, now: datetime, *, full: bool = True
) -> dict[str, Any]:
    """An edition as plain data: what `digest edition show --json` prints and the console
    shows. `full` adds the items, the variants and the history."""
    opens, closes = send_window(edition, settings)
    data: dict[str, Any] = {
        "id": edition.id,
        "status": edition.status,
        "status_reason": edition.status_reason,
        "window_start": edition.window_start.isoformat(),
        "cutoff": edition.cutoff.isoformat(),
        "send_window": [opens.isoformat(), closes.isoformat()],
        "subject": edition.subject,
        "preheader": edition.preheader,
        "intro": edition.intro,
        "items": len(edition.items),
        "built_at": _iso(edition.built_at),
        "approved_at": _iso(edition.approved_at),
        "approved_by": edition.approved_by,
        "send_started_at": _iso(edition.send_started_at),
        "sent_at": _iso(edition.sent_at),
    }
    if not full:
        return data
    data["items"] = [
        {
            "position": i.position,
            "article_id": i.article_id,
            "section": i.section,
            "title": i.title,
            "url": i.url,
            "author": i.author,
            "published_at": _iso(i.published_at),
            "score": i.score,
            "pinned": i.pinned,
            "reasons": list(i.reasons),
        }
        for i in edition.items
    ]
    data["variants"] = [
        {"sections": key.split("|"), "recipients": n}
        for key, n in variant_counts(session, edition, now).items()
    ]
    data["history"] = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "from": e.from_status,
            "to": e.to_status,
            "reason": e.reason,
            "forced": e.forced,
            "detail": e.detail,
        }
        for e in edition.history
    ]
    return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
