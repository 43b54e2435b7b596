"""The three steps of a slot (see digest.schedule.due): build, send, close.

Each runs under its claim, reads the slot's edition afresh, decides, acts through the same
core functions staff use (build_edition, the lifecycle's approve, send_edition), tells staff
when there is something to tell, and leaves the claim in its next state with the outcome. A
step that raises something unexpected (a bug) still leaves its claim `failed`, says so to
staff, and lets the run go on with the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from digest.edition import edits
from digest.edition.build import build_edition
from digest.edition.lifecycle import SYSTEM, EditionChanged
from digest.errors import DigestError, EditionStateError, EmptyWeekError, PreflightError
from digest.schedule import claims, messages
from digest.schedule.checks import Preflight, preflight, refused
from digest.schedule.claims import Claim
from digest.schedule.due import Run, StepResult
from digest.schedule.notices import EditionBrief, Notice
from digest.schedule.outcome import (
    Seen,
    crashed,
    expire,
    leave,
    live_workers,
    seen_at,
    skip_edition,
)
from digest.send.engine import SendReport, send_edition
from digest.send.runtime import Runtime
from digest.store.models import (
    APPROVED,
    CANCELLED,
    DRAFT,
    RUN_DONE,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_RUNNING,
    RUN_SKIPPED,
    RUN_WAITING,
    SENDING,
    SENT,
    SKIPPED,
    STEP_BUILD,
    STEP_SEND,
)

# Who approves under `approval = "auto"`, as the edition's history shows it.
AUTO_ACTOR = f"{SYSTEM} (auto)"


# --- build ---------------------------------------------------------------------------------


def _claimed(
    run: Run, slot: datetime, step: str, body: Callable[[Run, Claim], StepResult]
) -> StepResult | None:
    """`body` under the slot's claim for `step`; None when another holds it or it is done.
    An exception from `body` is a bug: the claim must not stay `running`."""
    held = claims.claim(run.factory, slot, step, run.now, run.owner)
    if held is None:
        return None
    try:
        return body(run, held)
    except Exception as exc:
        return crashed(run, held, exc)


def build(run: Run, slot: datetime) -> StepResult | None:
    """The draft for the slot, ahead of it, and a note to staff."""
    return _claimed(run, slot, STEP_BUILD, _build)


def _build(run: Run, held: Claim) -> StepResult:
    seen = seen_at(run, held.slot)
    if seen is not None and seen.status in (SKIPPED, CANCELLED):
        why = f"edition {seen.id} is {seen.status} ({seen.reason or 'no reason given'})"
        return leave(run, held, RUN_SKIPPED, f"{why}: not rebuilt", seen)
    made = (
        _make(run, held.slot) if seen is None or seen.status == DRAFT else _Made(seen, taken=True)
    )
    if made.taken and made.seen is not None:
        message = f"edition {made.seen.id} is {made.seen.status}: not rebuilt"
        return leave(run, held, RUN_DONE, message, made.seen)
    if made.conflict:
        return _conflict(run, held, made.seen)
    closes = held.slot + run.window
    if made.thin is not None:
        note = messages.thin(made.brief, made.thin, held.slot, run.slots)
        return leave(run, held, RUN_SKIPPED, f"thin week: {made.thin}", made.seen, note)
    if made.error is not None:
        note = messages.build_failed(str(made.error), held.slot, closes, run.auto, run.slots)
        code = made.error.exit_code
        return leave(run, held, RUN_FAILED, f"build failed: {made.error}", made.seen, note, code)
    assert made.seen is not None
    check = preflight(run.factory, run.settings, made.seen.id, run.clock())
    note = messages.built(made.seen.brief, check, held.slot, closes, run.auto, run.slots)
    items = len(made.seen.brief.items)
    message = f"built edition {made.seen.id} ({items} articles); preflight {_verdict(check)}"
    return leave(run, held, RUN_DONE, message, made.seen, note)


@dataclass
class _Made:
    seen: Seen | None
    thin: str | None = None
    error: DigestError | None = None
    # Approved or being sent (by staff, or by another process meanwhile): not to rebuild.
    taken: bool = False
    # Changed elsewhere at every try: the next run builds it.
    conflict: bool = False

    @property
    def brief(self) -> EditionBrief | None:
        return self.seen.brief if self.seen else None


def _make(run: Run, slot: datetime) -> _Made:
    """build_edition for the slot's week (one retry when an edit landed meanwhile)."""
    for attempt in (1, 2):
        try:
            build_edition(
                run.factory, run.settings, run.clock(), run.fetcher, actor=SYSTEM, cutoff=slot
            )
            return _Made(seen_at(run, slot))
        except EditionChanged:
            if attempt == 2:
                return _Made(seen_at(run, slot), conflict=True)
        except EmptyWeekError as exc:
            return _Made(seen_at(run, slot), thin=str(exc))
        except DigestError as exc:
            now_seen = seen_at(run, slot)
            if now_seen is not None and now_seen.status in (APPROVED, SENDING, SENT):
                return _Made(now_seen, taken=True)  # another process got there first
            return _Made(now_seen, error=exc)
    raise AssertionError("unreachable")


# --- send ----------------------------------------------------------------------------------


def send(run: Run, slot: datetime) -> StepResult | None:
    """At the slot and until its window closes: send the approved edition (under auto:
    rebuild, preflight and approve it first); a draft under `require` waits."""
    return _claimed(run, slot, STEP_SEND, _send)


def _send(run: Run, held: Claim) -> StepResult:
    seen = seen_at(run, held.slot)
    settled = _settled(run, held, seen)
    if settled is not None:
        return settled
    if run.auto and _auto_builds(seen):
        made = _make(run, held.slot)
        if made.conflict:
            return _conflict(run, held, made.seen)
        if made.seen is None or made.thin is not None or made.error is not None:
            return _auto_build_failed(run, held, made)
        refusal = None if made.taken else _auto_approve(run, held, made.seen)
        if refusal is not None:
            return refusal
        seen = seen_at(run, held.slot)
        settled = _settled(run, held, seen)
        if settled is not None:
            return settled
    if seen is None or seen.status != APPROVED:
        return _wait(run, held, seen)
    return _deliver(run, held, seen)  # the send runs preflight itself (PreflightError)


def _settled(run: Run, held: Claim, seen: Seen | None) -> StepResult | None:
    """The edition is sent or being sent: nothing to decide (a send of ours that SIGTERM
    stopped, or one abandoned by a dead process, is continued)."""
    if seen is None:
        return None
    if seen.status == SENT:
        return leave(run, held, RUN_DONE, f"edition {seen.id} is sent", seen)
    if seen.status != SENDING:
        return None
    if held.previous in (RUN_INTERRUPTED, RUN_RUNNING) and not live_workers(run, seen.id):
        return _deliver(run, held, seen, resume=True)
    return leave(run, held, RUN_DONE, f"edition {seen.id} is being sent (not by this run)", seen)


def _auto_builds(seen: Seen | None) -> bool:
    """Under auto the slot's run rebuilds a draft (late articles join, edits re-applied) or a
    week the schedule itself found thin; never what staff approved, skipped or cancelled."""
    return seen is None or seen.status == DRAFT or seen.skipped_by_schedule


def _auto_build_failed(run: Run, held: Claim, made: _Made) -> StepResult:
    if made.thin is not None:
        note = messages.skipped(made.brief, f"thin week: {made.thin}", held.slot, None, run.slots)
        return leave(run, held, RUN_SKIPPED, f"thin week: {made.thin}", made.seen, note)
    error = made.error or DigestError("the build made no edition")
    if made.seen is not None and made.seen.status in (DRAFT, APPROVED):
        skip_edition(run, made.seen.id, f"build failed: {error}")
    closes = held.slot + run.window
    note = messages.build_failed(str(error), held.slot, closes, False, run.slots)
    seen = seen_at(run, held.slot)
    return leave(run, held, RUN_FAILED, f"build failed: {error}", seen, note, error.exit_code)


def _auto_approve(run: Run, held: Claim, seen: Seen) -> StepResult | None:
    """Approve as "digest (auto)" through the function staff use, so the same gates hold:
    a failed preflight (or a thin week, an overlapping week) refuses it. An edit or a build
    elsewhere in the meantime is no refusal: tried again, then left to the next run."""
    for attempt in (1, 2):
        try:
            edits.change_status(
                run.factory, run.settings, seen.id, "approve", AUTO_ACTOR, run.clock()
            )
        except EditionChanged:
            if attempt == 2:
                return _conflict(run, held, seen)
            continue
        except PreflightError as exc:
            reason, report = refused(exc)
            return expire(run, held, seen, reason, report)
        except DigestError as exc:
            return expire(run, held, seen, f"not approved: {exc}", None)
        return None
    raise AssertionError("unreachable")


def _conflict(run: Run, held: Claim, seen: Seen | None) -> StepResult:
    """Another process kept changing the edition: nothing decided, the next run looks again."""
    what = f"edition {seen.id}" if seen else "the edition"
    message = f"{what} was changed elsewhere meanwhile (a build or an edit); the next run decides"
    return leave(run, held, RUN_WAITING, message, seen, notified=held.notified)


def _wait(run: Run, held: Claim, seen: Seen | None) -> StepResult:
    if seen is not None and seen.status in (SKIPPED, CANCELLED) and run.auto:
        why = f"edition {seen.id} is {seen.status} ({seen.reason or 'no reason given'})"
        return leave(run, held, RUN_SKIPPED, why, seen)
    closes = held.slot + run.window
    state = "not approved" if seen is not None and seen.status == DRAFT else "no edition"
    if seen is not None and seen.status in (SKIPPED, CANCELLED):
        state = f"edition {seen.id} is {seen.status}"
    message = f"{state}: waiting until {run.slots.local(closes)}"
    note: Notice | None = None
    if not held.notified and held.slot not in run.told and (seen is None or seen.status == DRAFT):
        note = messages.waiting(seen.brief if seen else None, held.slot, closes, run.slots)
    result = leave(run, held, RUN_WAITING, message, seen, note, notified=held.notified)
    result.repeat = held.previous == RUN_WAITING and note is None
    return result


def _deliver(run: Run, held: Claim, seen: Seen, *, resume: bool = False) -> StepResult:
    runtime = Runtime(clock=run.clock, should_stop=run.stop)
    try:
        report = send_edition(
            run.factory,
            run.settings,
            run.backend,
            edition_id=seen.id,
            now=run.clock(),
            resume_send=resume,
            runtime=runtime,
            config=run.config,
            actor=SYSTEM,
        )
    except DigestError as exc:
        return _send_refused(run, held, seen, exc)
    return _delivered(run, held, report)


def _send_refused(run: Run, held: Claim, seen: Seen, exc: DigestError) -> StepResult:
    if isinstance(exc, PreflightError):  # refused before anything was frozen: a skip
        reason, report = refused(exc)
        return expire(run, held, seen, reason, report)
    now_seen = seen_at(run, held.slot)
    elsewhere = now_seen is not None and now_seen.status in (SENDING, SENT)
    if isinstance(exc, EditionStateError) and elsewhere:
        return leave(run, held, RUN_DONE, f"edition {seen.id}: {exc}", now_seen)
    note = messages.send_failed(seen.id, str(exc), held.slot, run.slots)
    return leave(run, held, RUN_FAILED, f"send failed: {exc}", now_seen, note, exc.exit_code)


def _delivered(run: Run, held: Claim, report: SendReport) -> StepResult:
    seen = seen_at(run, held.slot)
    e = report.edition_id
    counts = ", ".join(f"{n:,} {s}" for s, n in sorted(report.counts.items())) or "nobody"
    if report.finished:
        note = messages.sent(seen.brief, counts, held.slot, run.slots) if seen else None
        return leave(run, held, RUN_DONE, f"sent edition {e}: {counts}", seen, note)
    if report.stopped in ("stopped", "warm-up"):
        why = "stopped by SIGTERM" if report.stopped == "stopped" else "today's warm-up cap"
        note = None if held.notified else messages.interrupted(e, why, held.slot, run.slots)
        message = f"send of edition {e} paused ({why}): {counts}; the next run continues it"
        return leave(run, held, RUN_INTERRUPTED, message, seen, note, notified=held.notified)
    if report.stopped == "cancelled":
        message = f"the send of edition {e} was cancelled (`digest send --resume {e}` continues)"
        return leave(run, held, RUN_SKIPPED, message, seen)
    error = f"{len(report.uncertain):,} recipients uncertain, {counts}"
    note = messages.send_failed(e, error, held.slot, run.slots)
    return leave(run, held, RUN_FAILED, f"send not finished: {error}", seen, note, 1)


# --- close ---------------------------------------------------------------------------------


def close(run: Run, slot: datetime) -> StepResult | None:
    """The send window closed: record what happened to the slot, skip what was not sent."""
    return _claimed(run, slot, STEP_SEND, _close)


def _close(run: Run, held: Claim) -> StepResult:
    seen = seen_at(run, held.slot)
    settled = _settled(run, held, seen)
    if settled is not None:
        return settled
    closes = run.slots.local(held.slot + run.window)
    if seen is None:
        reason = f"nothing was built or sent for it before its send window closed at {closes}"
        note = messages.skipped(None, reason, held.slot, None, run.slots)
        return leave(run, held, RUN_SKIPPED, f"missed: {reason}", None, note)
    if seen.status in (SKIPPED, CANCELLED):
        why = f"edition {seen.id} is {seen.status} ({seen.reason or 'no reason given'})"
        return leave(run, held, RUN_SKIPPED, why, seen)
    if seen.status == DRAFT and not run.auto:
        reason = f"not approved before its send window closed at {closes}"
    else:
        reason = f"its send window closed at {closes} before it was sent"
    return expire(run, held, seen, reason, None)


def _verdict(check: Preflight) -> str:
    if not check.ok:
        return "failed: " + "; ".join(check.failures)
    return "passed" + (f" ({len(check.warnings)} warning(s))" if check.warnings else "")
