"""`digest status`: the schedule at a glance, as plain data (the CLI prints it or its JSON).

The next slot and what will happen then (from the edition's state and the approval mode),
the slot still open if one is (a send window waiting for approval), the current edition, the
last send's counts, and the schedule's recent skips and failures. Read-only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import NotFoundError
from digest.schedule.slots import Slots
from digest.send.status import status as send_status
from digest.store.models import (
    APPROVED,
    DRAFT,
    RUN_FAILED,
    RUN_FINAL,
    RUN_SKIPPED,
    SENDING,
    SENT,
    STEP_SEND,
    Edition,
    ScheduleRun,
)

RECENT = 10


def overview(factory: sessionmaker[Session], settings: Settings, now: datetime) -> dict[str, Any]:
    slots = _slots(settings)
    with factory() as session:
        newest = session.scalar(select(Edition).order_by(Edition.cutoff.desc()).limit(1))
        return {
            "now": now.isoformat(),
            "schedule": _schedule(settings),
            "slots": [_slot(session, settings, slots, s, now) for s in _shown(settings, slots, now)]
            if slots
            else [],
            "current_edition": _edition(newest) if newest else None,
            "last_send": _last_send(session, settings, now),
            "recent_problems": _recent(session),
        }


def _slots(settings: Settings) -> Slots | None:
    cron = settings.schedule.cron
    return Slots(cron, settings.publication.tz) if cron else None


def _schedule(settings: Settings) -> dict[str, Any] | None:
    s = settings.schedule
    if not s.cron:
        return None
    return {
        "cron": s.cron,
        "timezone": settings.publication.timezone,
        "approval": s.approval,
        "build_lead_hours": s.build_lead_hours,
        "send_window_hours": settings.newsletter.send_window_hours,
        "notify": list(s.notify),
    }


def _shown(settings: Settings, slots: Slots, now: datetime) -> list[datetime]:
    """The slot whose send window is still open (if any), then the next one."""
    window = timedelta(hours=settings.newsletter.send_window_hours)
    shown = list(slots.between(now - window, now))[-1:]
    return [*shown, slots.after(now)]


def _slot(
    session: Session, settings: Settings, slots: Slots, slot: datetime, now: datetime
) -> dict[str, Any]:
    lead = timedelta(hours=settings.schedule.build_lead_hours)
    closes = slot + timedelta(hours=settings.newsletter.send_window_hours)
    edition = session.scalar(select(Edition).where(Edition.cutoff == slot))
    run = session.scalar(
        select(ScheduleRun).where(ScheduleRun.slot == slot, ScheduleRun.step == STEP_SEND)
    )
    return {
        "slot": slot.isoformat(),
        "local": slots.local(slot),
        "build_at": (slot - lead).isoformat(),
        "window_closes": closes.isoformat(),
        "edition": _edition(edition) if edition else None,
        "send_step": {"state": run.state, "outcome": run.outcome} if run else None,
        "will": forecast(settings, slots, slot, edition, run, now),
    }


def forecast(
    settings: Settings,
    slots: Slots,
    slot: datetime,
    edition: Edition | None,
    run: ScheduleRun | None,
    now: datetime,
) -> str:
    """What will happen at (or for) this slot, in a sentence."""
    auto = settings.schedule.approval == "auto"
    at, closes = (
        slots.local(slot),
        slots.local(slot + timedelta(hours=settings.newsletter.send_window_hours)),
    )
    if run is not None and run.state in RUN_FINAL:
        return f"{run.state}: {run.outcome}"
    then = (
        f"at {at} it is rebuilt, approved if preflight passes, and sent"
        if auto
        else f"it is sent at {at} only if staff approve it (until {closes})"
    )
    if edition is None:
        build_at = slots.local(slot - timedelta(hours=settings.schedule.build_lead_hours))
        return f"the draft is built at {build_at}; {then}" if now < slot else then
    e = edition.id
    if edition.status == APPROVED:
        return f"edition {e} (approved by {edition.approved_by}) is sent at {at}" + (
            "" if now < slot else " (at the next run)"
        )
    if edition.status == DRAFT:
        return f"edition {e} is a draft: {then}"
    if edition.status in (SENDING, SENT):
        return f"edition {e} is {edition.status}"
    return f"edition {e} is {edition.status} ({edition.status_reason or 'no reason given'})"


def _edition(edition: Edition) -> dict[str, Any]:
    return {
        "id": edition.id,
        "status": edition.status,
        "status_reason": edition.status_reason,
        "subject": edition.subject,
        "window_start": edition.window_start.isoformat(),
        "cutoff": edition.cutoff.isoformat(),
        "items": len(edition.items),
        "approved_by": edition.approved_by,
        "sent_at": edition.sent_at.isoformat() if edition.sent_at else None,
    }


def _last_send(session: Session, settings: Settings, now: datetime) -> dict[str, Any] | None:
    edition = session.scalar(
        select(Edition)
        .where(Edition.status.in_((SENDING, SENT)))
        .order_by(Edition.send_started_at.desc())
        .limit(1)
    )
    if edition is None:
        return None
    try:
        s = send_status(session, edition.id, now, settings.delivery.worker_timeout)
    except NotFoundError:  # marked sent by hand, no ledger: nothing to count
        return {"edition": edition.id, "status": edition.status, "counts": {}}
    return {
        "edition": edition.id,
        "status": edition.status,
        "started_at": s.started_at.isoformat(),
        "sent_at": edition.sent_at.isoformat() if edition.sent_at else None,
        "planned": s.planned,
        "counts": {k: v for k, v in sorted(s.counts.items()) if v},
        "uncertain": s.uncertain,
        "opens": s.opens,
        "clicks": s.clicks,
    }


def _recent(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ScheduleRun)
        .where(ScheduleRun.state.in_((RUN_SKIPPED, RUN_FAILED)))
        .order_by(ScheduleRun.updated_at.desc(), ScheduleRun.id.desc())
        .limit(RECENT)
    )
    return [
        {
            "slot": r.slot.isoformat(),
            "step": r.step,
            "state": r.state,
            "edition": r.edition_id,
            "at": r.updated_at.isoformat(),
            "outcome": r.outcome,
        }
        for r in rows
    ]
