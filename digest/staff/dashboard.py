"""The console's dashboard as plain data: the next slot and what will happen then, the current
edition and its state, and the numbers of the last edition sent. Read-only.

`next_slots` is the one place the dashboard learns about the schedule. With `[schedule] cron`
set, it is `digest status`'s own view (digest.schedule.status.overview): the slot whose send
window is still open, the next one, what will happen at each, and the schedule's recent skips
and failures. Without a schedule (the week run from cron jobs or by hand), the next moment is
the current edition's send window (or the next week's cut-off once it is done), and what will
happen is what the edition's state lets the next `digest send` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.lifecycle import send_window
from digest.edition.queries import describe
from digest.ledger import registry, tally
from digest.schedule import status as schedule_status
from digest.staff.history import EditionNumbers, last_sent
from digest.store.models import APPROVED, DRAFT, SENDING, Edition


@dataclass
class NextSlot:
    at: datetime | None  # the moment it is about (a send window's opening, a week's cut-off)
    local: str  # the same on the publication's clock
    will: str  # what will happen then, in a sentence
    closes: datetime | None = None  # the send window's close, when one is open or ahead


@dataclass
class Dashboard:
    slots: list[NextSlot]  # the open slot (if any) and the next one
    scheduled: bool  # [schedule] cron is set: `digest schedule` (or run-due) runs the week
    problems: list[dict[str, Any]]  # the schedule's recent skips and failures, newest first
    current: dict[str, Any] | None  # digest.edition.queries.describe of the newest edition
    last: EditionNumbers | None
    # Every other edition still to send or being sent (an older draft, a send under way).
    others: list[dict[str, Any]]


def overview(factory: sessionmaker[Session], settings: Settings, now: datetime) -> Dashboard:
    slots, scheduled, problems = next_slots(factory, settings, now)
    with factory() as session:
        newest = session.scalar(
            select(Edition).order_by(Edition.cutoff.desc(), Edition.id.desc()).limit(1)
        )
        others = session.scalars(
            select(Edition)
            .where(Edition.status.in_((DRAFT, APPROVED, SENDING)))
            .order_by(Edition.cutoff.desc(), Edition.id.desc())
        )
        return Dashboard(
            slots=slots or [unscheduled(session, settings, newest, now)],
            scheduled=scheduled,
            problems=problems,
            current=describe(session, newest, settings, now, full=False) if newest else None,
            last=last_sent(session, settings),
            others=[
                describe(session, e, settings, now, full=False)
                for e in others
                if newest is None or e.id != newest.id
            ],
        )


def next_slots(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> tuple[list[NextSlot], bool, list[dict[str, Any]]]:
    """The schedule's slots as `digest status` tells them (none without a schedule), whether
    there is a schedule, and its recent problems."""
    status = schedule_status.overview(factory, settings, now)
    slots = [
        NextSlot(
            at=datetime.fromisoformat(slot["slot"]),
            local=slot["local"],
            will=_sentence(slot["will"]),
            closes=datetime.fromisoformat(slot["window_closes"]),
        )
        for slot in status["slots"]
    ]
    return slots, status["schedule"] is not None, list(status["recent_problems"])


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def local(settings: Settings, moment: datetime) -> str:
    """A moment as staff read it: the publication's wall clock and its zone."""
    return f"{moment.astimezone(settings.publication.tz):%a %Y-%m-%d %H:%M %Z}"


def unscheduled(
    session: Session, settings: Settings, edition: Edition | None, now: datetime
) -> NextSlot:
    """Without a schedule: the next moment the newsletter moves, and what happens then."""
    if edition is None:
        return NextSlot(None, "—", "No edition yet: `digest build` makes the first draft.")
    opens, closes = send_window(edition, settings)
    e = edition.id
    if edition.status in (DRAFT, APPROVED) and now < closes:
        at = max(opens, now)
        if edition.status == DRAFT:
            will = (
                f"Edition {e} is a draft: it goes out only once a publisher approves it; "
                f"`digest send` refuses it after {local(settings, closes)} (its send window "
                "closes)."
            )
        else:
            will = (
                f"Edition {e} (approved by {edition.approved_by}) goes out at the next "
                f"`digest send` from {local(settings, opens)} until {local(settings, closes)}."
            )
        return NextSlot(at, local(settings, at), will, closes)
    if edition.status == SENDING:
        sent = registry.send_state(session, e)
        left = tally.pending(session, e) if sent is not None else 0
        state = sent.state if sent is not None else "sending"
        will = f"Edition {e} is being sent ({state}): {left:,} recipients to go."
        return NextSlot(now, local(settings, now), will)
    cutoff = edition.cutoff + timedelta(days=settings.newsletter.window_days)
    while cutoff <= now:
        cutoff += timedelta(days=settings.newsletter.window_days)
    will = (
        f"The next edition's week ends then: `digest build` makes its draft for staff to "
        f"review, approve and send (edition {e} is {edition.status})."
    )
    return NextSlot(cutoff, local(settings, cutoff), will)
