"""What the staff API (and the console) show, as plain data: an edition with its archive
address and send progress, the week's candidates, a send's progress, subscribers found by a
search, and the numbers of the whole list. Read-only; the faces only serialise these.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import archive
from digest.edition.queries import describe, get_edition, list_editions
from digest.edition.ranking import candidate_json, rank_week
from digest.errors import UsageError
from digest.ledger import registry
from digest.people.privacy import export_person, find_public_id
from digest.send.status import SendStatus, status
from digest.store.models import SENDING, SENT, SUBMITTED, Edition
from subscribers.models import ERASED, STATUSES, Subscriber

MAX_PAGE = 200
# The states a subscriber can be found in (an erased person is gone).
LISTED_STATUSES = tuple(s for s in STATUSES if s != ERASED)


def editions(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every edition, newest week first, without items (`edition` has them)."""
    found = list_editions(session)
    urls = _archive_urls(session, settings, found)
    return [
        {**describe(session, e, settings, now, full=False), "archive_url": urls.get(e.id)}
        for e in found
    ]


def _archive_urls(session: Session, settings: Settings, found: list[Edition]) -> dict[int, str]:
    if not archive.enabled(settings):
        return {}
    return {
        e.id: url
        for e in found
        if e.status in archive.ARCHIVED and (url := archive.archive_url(session, settings, e))
    }


def edition(session: Session, settings: Settings, edition_id: int, now: datetime) -> dict[str, Any]:
    """One edition: items with reasons, variants, state, window, history, archive address and,
    once its send began, the send's progress."""
    found = get_edition(session, edition_id)
    data = describe(session, found, settings, now)
    data["archive_url"] = archive.archive_url(session, settings, found)
    started = registry.send_state(session, found.id) is not None
    data["send"] = progress(session, settings, found.id, now) if started else None
    return data


def candidates(session: Session, settings: Settings, edition_id: int) -> dict[str, Any]:
    """Every candidate of the edition's week, best first, chosen or not, with its reasons: the
    ranking a rebuild would make now (the stored articles and the staff's edits)."""
    found = get_edition(session, edition_id)
    week = rank_week(
        session, settings, found.window_start, found.cutoff, list(found.edits), found.id
    )
    return {
        "edition_id": found.id,
        "in_window": week.in_window,
        "stale_edits": list(week.stale),
        "candidates": [candidate_json(r) for r in week.result.candidates],
    }


def progress(
    session: Session, settings: Settings, edition_id: int, now: datetime
) -> dict[str, Any]:
    """A send's counts per ledger state, rate, ETA, workers, uncertain rows, opens, clicks."""
    return progress_json(status(session, edition_id, now, settings.delivery.worker_timeout))


def progress_json(s: SendStatus) -> dict[str, Any]:
    return {
        "edition_id": s.edition_id,
        "edition_status": s.edition_status,
        "state": s.state,
        "planned": s.planned,
        "counts": dict(s.counts),
        "remaining": s.remaining,
        "percent": percent_settled(s),
        "done": s.edition_status == SENT,
        "started_at": s.started_at.isoformat(),
        "rate_per_s": round(s.rate, 3),
        "eta_s": None if s.eta_s is None else round(s.eta_s, 1),
        "live_workers": list(s.live_workers),
        "uncertain": s.uncertain,
        "opens": s.opens,
        "machine_opens": s.machine_opens,
        "clicks": s.clicks,
        "top_links": [{"url": url, "clicks": n} for url, n in s.top_links],
    }


def percent_settled(s: SendStatus) -> int:
    """How far a send is: recipients accepted, failed or skipped, in whole per cent (rounded
    down, so 100 means every one of them)."""
    if s.planned <= 0:
        return 100
    settled = s.planned - s.remaining - s.counts[SUBMITTED]
    return max(0, min(100, settled * 100 // s.planned))


def subscribers(
    session: Session, search: str, limit: int = 50, offset: int = 0, status: str | None = None
) -> dict[str, Any]:
    """Subscribers whose address or name contains `search` (any case), by address; with
    `status`, only those in it."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Subscriber)
    if status:
        if status not in LISTED_STATUSES:
            raise UsageError(f"status {status!r} is not one of {', '.join(LISTED_STATUSES)}")
        query = query.where(Subscriber.status == status)
    needle = search.strip().lower()
    if needle:
        pattern = f"%{_escape_like(needle)}%"
        query = query.where(
            or_(
                Subscriber.email.like(pattern, escape="\\"),
                func.lower(Subscriber.name).like(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Subscriber.email).limit(limit).offset(max(0, offset)))
    return {
        "search": search,
        "status": status or None,
        "total": int(total),
        "limit": limit,
        "offset": max(0, offset),
        "subscribers": [_subscriber(s) for s in rows],
    }


def person(session: Session, public_id: str, keys: Sequence[str]) -> dict[str, Any]:
    """Everything held about one subscriber (digest.people.privacy.export_person), found by
    their opaque public id (the console's addresses never carry an email address)."""
    return export_person(session, find_public_id(session, public_id).email, keys)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _subscriber(s: Subscriber) -> dict[str, Any]:
    return {
        "email": s.email,
        "name": s.name,
        "status": s.status,
        "sections": s.sections,
        "public_id": s.public_id,
        "created_at": s.created_at.isoformat(),
        "confirmed_at": _iso(s.confirmed_at),
        "unsubscribed_at": _iso(s.unsubscribed_at),
        "paused_until": _iso(s.paused_until),
    }


def stats(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """The list and the editions in numbers, and the latest send's outcome."""
    by_status = dict(
        session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all()
    )
    sections: Counter[str] = Counter()
    # Grouped by the sections chosen (a few dozen sets), not read person by person; JSON has
    # no equality in PostgreSQL, so the groups are its text.
    chosen_text = cast(Subscriber.sections, Text)
    active = (
        select(chosen_text, func.count()).where(Subscriber.status == "active").group_by(chosen_text)
    )
    for raw, n in session.execute(active):
        chosen = json.loads(raw) if raw is not None else None
        for section in chosen or settings.newsletter.sections:
            sections[section] += int(n)
    editions_by_status = dict(
        session.execute(select(Edition.status, func.count()).group_by(Edition.status)).all()
    )
    latest = session.scalar(
        select(Edition.id)
        .where(Edition.status.in_((SENDING, SENT)))
        .order_by(Edition.send_started_at.desc(), Edition.id.desc())
        .limit(1)
    )
    return {
        "subscribers": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "active_by_section": {s: sections[s] for s in settings.newsletter.sections},
        },
        "editions": {"total": sum(editions_by_status.values()), "by_status": editions_by_status},
        "latest_send": None if latest is None else progress(session, settings, latest, now),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
