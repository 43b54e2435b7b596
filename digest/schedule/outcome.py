"""How a step ends (digest.schedule.steps): the slot's edition as the step finds it, the edition
skipped with its reason, the note to staff, and the claim left in its next state with the
outcome that `digest status` and the logs show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from digest.edition import lifecycle
from digest.edition.lifecycle import SYSTEM
from digest.errors import EditionStateError
from digest.ledger import registry
from digest.schedule import claims, messages, notices
from digest.schedule.checks import Preflight
from digest.schedule.claims import Claim
from digest.schedule.due import Run, StepResult
from digest.schedule.notices import EditionBrief, Notice
from digest.store.db import transaction
from digest.store.models import (
    RUN_FAILED,
    RUN_SKIPPED,
    RUN_WAITING,
    SKIPPED,
    STEP_BUILD,
    Edition,
)

log = logging.getLogger("digest.schedule")


@dataclass(frozen=True)
class Seen:
    """The slot's edition as a step found it: None when there is none."""

    id: int
    status: str
    reason: str | None
    skipped_by_schedule: bool
    brief: EditionBrief


def expire(run: Run, held: Claim, seen: Seen, reason: str, check: Preflight | None) -> StepResult:
    """The edition is skipped with the reason, and staff are told."""
    if not skip_edition(run, seen.id, reason):
        message = f"edition {seen.id} changed meanwhile; the next run decides again"
        return leave(run, held, RUN_WAITING, message, seen, notified=held.notified)
    after = seen_at(run, held.slot)
    brief = after.brief if after else seen.brief
    note = messages.skipped(brief, reason, held.slot, check, run.slots)
    return leave(run, held, RUN_SKIPPED, f"edition {seen.id} skipped: {reason}", after, note)


def skip_edition(run: Run, edition_id: int, reason: str) -> bool:
    try:
        with transaction(run.factory) as session:
            edition = session.get(Edition, edition_id)
            if edition is None:
                return False
            seen = edition.version
            lifecycle.expire(session, edition, SYSTEM, run.clock(), reason)
            lifecycle.bump(session, edition, seen, "skipping it")
    except EditionStateError:
        return False
    return True


def leave(
    run: Run,
    held: Claim,
    state: str,
    message: str,
    seen: Seen | None,
    note: Notice | None = None,
    exit_code: int = 0,
    *,
    notified: bool = False,
) -> StepResult:
    """Tell staff (if there is a note), then leave the claim in `state` with the outcome."""
    sent: notices.Sent | None = None
    if note is not None:
        run.told.add(held.slot)
        # Nobody to tell counts as told: a waiting step would otherwise try at every run.
        if run.settings.schedule.notify:
            sent = notices.send(run.settings, note, run.backend)
    told = notified or (note is not None and (sent is None or bool(sent.to)))
    edition_id = seen.id if seen else held.edition_id
    kept = claims.release(
        run.factory, held, state, run.clock(), message, edition_id=edition_id, notified=told
    )
    if not kept:
        log.warning("slot %s %s: the claim was taken over meanwhile", held.slot, held.step)
    return StepResult(
        slot=held.slot,
        step=held.step,
        state=state,
        message=message,
        edition_id=edition_id,
        exit_code=exit_code if state == RUN_FAILED else 0,
        told=sent.to if sent else [],
        note_error=sent.error if sent and not sent.to else None,
    )


def crashed(run: Run, held: Claim, exc: Exception) -> StepResult:
    log.exception("slot %s %s: internal error", held.slot, held.step)
    error = f"internal error: {type(exc).__name__}: {exc}"
    closes = held.slot + run.window
    note = (
        messages.build_failed(error, held.slot, closes, run.auto, run.slots)
        if held.step == STEP_BUILD
        else messages.step_failed(error, held.slot, run.slots)
    )
    return leave(run, held, RUN_FAILED, error, None, note, 1)


def seen_at(run: Run, slot: datetime) -> Seen | None:
    with run.factory() as session:
        edition = session.scalar(select(Edition).where(Edition.cutoff == slot))
        if edition is None:
            return None
        last = edition.history[-1] if edition.history else None
        by_schedule = (
            edition.status == SKIPPED
            and last is not None
            and last.action == "skipped"
            and last.actor == SYSTEM
        )
        brief = notices.brief(edition, run.settings, run.slots)
        return Seen(edition.id, edition.status, edition.status_reason, by_schedule, brief)


def live_workers(run: Run, edition_id: int) -> bool:
    with run.factory() as session:
        timeout = run.settings.delivery.worker_timeout
        return bool(registry.live_workers(session, edition_id, run.clock(), timeout))
