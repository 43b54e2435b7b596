"""The edition lifecycle: draft -> approved -> sending -> sent, plus cancelled and skipped.

The one place an edition changes status. Every change is recorded in its history with who made
it, when and why, and every gate that a person may overrule takes the same `Override` (the
CLI's `--force --reason TEXT`), which the history keeps beside the change it let through.

    draft ──approve──> approved ──send──> sending ──> sent
      │  <─unapprove/edit─┘ │
      ├──skip──> skipped <──┤ (the scheduler, when the send window closed unsent)
      └──cancel─> cancelled └──cancel──> cancelled
                              (a rebuild of the same week makes either a draft again)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest import human
from digest.config import Settings
from digest.errors import EditionStateError, UsageError
from digest.store.models import (
    APPROVED,
    CANCELLED,
    DRAFT,
    LOCKED_STATUSES,
    SENDING,
    SENT,
    SKIPPED,
    Edition,
    EditionEvent,
    EditionItem,
)

if TYPE_CHECKING:
    from digest.edition.preflight import PreflightReport

# The actor of what no person started (a cron build, the end of a send).
SYSTEM = "digest"

# status -> the statuses it may become. Rebuilding a skipped or cancelled week makes a draft.
# An approved edition is skipped when its send window closed before it was sent.
TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({APPROVED, CANCELLED, SKIPPED}),
    APPROVED: frozenset({DRAFT, SENDING, CANCELLED, SKIPPED}),
    SENDING: frozenset({SENT}),
    SENT: frozenset(),
    CANCELLED: frozenset({DRAFT}),
    SKIPPED: frozenset({DRAFT}),
}


@dataclass(frozen=True)
class Override:
    """`--force --reason TEXT`: a person takes responsibility for passing a gate."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise UsageError("--force needs --reason TEXT: say why, it goes into the history")


def override(force: bool, reason: str | None) -> Override | None:
    """The CLI's two flags as one value; --reason alone is kept as the change's reason."""
    if force:
        return Override(reason or "")
    return None


class EditionChanged(EditionStateError):
    """Someone else changed the edition between our read and our write; ours changed nothing."""


def bump(session: Session, edition: Edition, seen: int, what: str = "this change") -> None:
    """Compare-and-swap the edition's version from `seen`, the one read before deciding: a
    concurrent build or edit that read the same version then finds 0 rows and is refused
    (PostgreSQL's row lock makes it wait for ours, then re-read; SQLite has one writer)."""
    done = session.execute(
        update(Edition)
        .where(Edition.id == edition.id, Edition.version == seen)
        .values(version=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise EditionChanged(
            f"edition {edition.id} was changed by someone else meanwhile (a build or an edit); "
            f"{what} changed nothing: look again (`digest edition show {edition.id}`) and retry"
        )


def record(
    session: Session,
    edition: Edition,
    action: str,
    actor: str,
    now: datetime,
    *,
    reason: str | None = None,
    forced: bool = False,
    detail: str | None = None,
    from_status: str | None = None,
) -> EditionEvent:
    event = EditionEvent(
        at=now,
        actor=actor,
        action=action,
        from_status=from_status if from_status is not None else edition.status,
        to_status=edition.status,
        reason=reason,
        forced=forced,
        detail=detail,
    )
    edition.history.append(event)
    return event


def move(
    session: Session,
    edition: Edition,
    to: str,
    actor: str,
    now: datetime,
    *,
    action: str,
    reason: str | None = None,
    forced: bool = False,
    detail: str | None = None,
) -> None:
    """Change the status, if the lifecycle allows it, and record who did it and why."""
    before = edition.status
    if to not in TRANSITIONS[before]:
        raise EditionStateError(f"edition {edition.id} is {before}: it cannot be {action}")
    edition.status = to
    if to != APPROVED:
        edition.content_hash = None
    record(
        session,
        edition,
        action,
        actor,
        now,
        reason=reason,
        forced=forced,
        detail=detail,
        from_status=before,
    )


def content_hash(edition: Edition) -> str:
    """What approval freezes: subject, preheader, intro and every item as it will render."""
    content = {
        "subject": edition.subject,
        "preheader": edition.preheader,
        "intro": edition.intro,
        "items": [_item_content(i) for i in sorted(edition.items, key=lambda i: i.position)],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _item_content(item: EditionItem) -> list[object]:
    when = item.published_at.isoformat() if item.published_at else None
    fields = (item.article_id, item.position, item.section, item.title, item.url)
    return [*fields, item.summary, item.author, item.image_url, when]


def overlapping(
    session: Session, start: datetime, cutoff: datetime, own_id: int | None
) -> Edition | None:
    """An approved, sending or sent edition whose week overlaps [start, cutoff), if any."""
    query = select(Edition).where(
        Edition.status.in_(LOCKED_STATUSES),
        Edition.window_start < cutoff,
        Edition.cutoff > start,
    )
    if own_id is not None:
        query = query.where(Edition.id != own_id)
    return session.scalar(query.order_by(Edition.cutoff).limit(1))


def approve(
    session: Session,
    edition: Edition,
    settings: Settings,
    actor: str,
    now: datetime,
    force: Override | None = None,
    preflight: PreflightReport | None = None,
) -> None:
    """Freeze the content for sending. Refused for a thin week or a failed `preflight` (unless
    forced), for a week that overlaps one already approved or sent, and for articles another
    edition already carries. `preflight` must be of this version of the edition."""
    if edition.status != DRAFT:
        raise EditionStateError(
            f"edition {edition.id} is {edition.status}, not a draft: "
            + ("it is already approved" if edition.status == APPROVED else "it cannot be approved")
        )
    other = overlapping(session, edition.window_start, edition.cutoff, edition.id)
    if other is not None:
        raise EditionStateError(
            f"edition {edition.id}'s week overlaps edition {other.id}, which is {other.status}: "
            "its readers would get the same week twice"
        )
    taken = _taken_elsewhere(session, edition)
    if taken:
        raise EditionStateError(
            f"edition {edition.id} carries {len(taken)} article(s) already in an approved or sent "
            f"edition (article ids {', '.join(map(str, sorted(taken)[:10]))}): rebuild it with "
            "`digest build`"
        )
    if not edition.items:
        raise EditionStateError(f"edition {edition.id} has no articles: nothing to approve")
    minimum = settings.newsletter.min_items
    thin = len(edition.items) < minimum
    if thin and force is None:
        raise EditionStateError(
            f"edition {edition.id} has {len(edition.items)} article(s), fewer than min_items "
            f"({minimum}): add some with `digest edition pin`, or approve it anyway with "
            "--force --reason TEXT"
        )
    checked = False
    if preflight is not None:
        if preflight.version != edition.version:
            raise EditionChanged(
                f"edition {edition.id} changed while it was being checked: approve it again"
            )
        checked = preflight.require(force, "approving")
    move(
        session,
        edition,
        APPROVED,
        actor,
        now,
        action="approved",
        reason=force.reason if force else None,
        forced=force is not None and (thin or checked),
        detail=f"{len(edition.items)} articles"
        + (f", fewer than min_items {minimum}" if thin else "")
        + (f"; {preflight.note()}" if preflight is not None else ""),
    )
    edition.approved_at = now
    edition.approved_by = actor
    edition.content_hash = content_hash(edition)


def _taken_elsewhere(session: Session, edition: Edition) -> set[int]:
    mine = {i.article_id for i in edition.items}
    if not mine:
        return set()
    query = (
        select(EditionItem.article_id)
        .join(Edition, Edition.id == EditionItem.edition_id)
        .where(
            Edition.status.in_(LOCKED_STATUSES),
            Edition.id != edition.id,
            EditionItem.article_id.in_(mine),
        )
    )
    return set(session.scalars(query))


def unapprove(
    session: Session, edition: Edition, actor: str, now: datetime, reason: str | None = None
) -> None:
    if edition.status != APPROVED:
        raise EditionStateError(f"edition {edition.id} is {edition.status}, not approved")
    move(session, edition, DRAFT, actor, now, action="unapproved", reason=reason)
    edition.approved_at = None
    edition.approved_by = None


def cancel(
    session: Session, edition: Edition, actor: str, now: datetime, reason: str | None = None
) -> None:
    if edition.status == SENDING:
        raise EditionStateError(
            f"edition {edition.id} is being sent: stop the send with `digest send cancel "
            f"{edition.id}` (it can be resumed), not by cancelling the edition"
        )
    if edition.status == CANCELLED:
        raise EditionStateError(f"edition {edition.id} is already cancelled")
    move(session, edition, CANCELLED, actor, now, action="cancelled", reason=reason)
    edition.status_reason = reason


def skip(session: Session, edition: Edition, actor: str, now: datetime, reason: str) -> None:
    """This week gets no email. Its articles stay available: the next build reaches back."""
    if not reason.strip():
        raise UsageError("skipping an edition needs --reason TEXT")
    if edition.status != DRAFT:
        raise EditionStateError(
            f"edition {edition.id} is {edition.status}: only a draft is skipped"
        )
    move(session, edition, SKIPPED, actor, now, action="skipped", reason=reason)
    edition.status_reason = reason


def expire(session: Session, edition: Edition, actor: str, now: datetime, reason: str) -> None:
    """The scheduler's skip: the edition was not sent and now will not be (its send window
    closed, or a gate refused it at the slot). A draft or an approved edition; staff skip only
    drafts (`skip`), an approved one they unapprove or cancel."""
    if edition.status not in (DRAFT, APPROVED):
        raise EditionStateError(
            f"edition {edition.id} is {edition.status}: only a draft or an approved edition "
            "is skipped by the schedule"
        )
    move(session, edition, SKIPPED, actor, now, action="skipped", reason=reason)
    edition.status_reason = reason


def send_window(edition: Edition, settings: Settings) -> tuple[datetime, datetime]:
    """From the cut-off until [newsletter] send_window_hours after it."""
    hours = settings.newsletter.send_window_hours
    return edition.cutoff, edition.cutoff + timedelta(hours=hours)


def check_approved(edition: Edition, tz: tzinfo = UTC) -> bool:
    """The status half of `check_sendable`, for callers that judge no send window. Times in
    its messages are in `tz` (the publication's timezone when the caller knows it)."""
    e = edition.id
    if edition.status == SENT:
        finished = human.moment(edition.sent_at, tz, missing="at an unknown time")
        raise EditionStateError(f"edition {e} was already sent (finished {finished})")
    if edition.status == SENDING:
        started = human.moment(edition.send_started_at, tz, missing="at an unknown time")
        raise EditionStateError(
            f"edition {e} is already being sent (started {started}); after a crash continue it "
            f"with `digest send --resume {e}`"
        )
    if edition.status == DRAFT:
        raise EditionStateError(
            f"edition {e} is a draft, not approved: check it with `digest edition show {e}`, "
            f"then `digest edition approve {e}`"
        )
    if edition.status != APPROVED:
        raise EditionStateError(f"edition {e} is {edition.status}: it will not be sent")
    if edition.content_hash != content_hash(edition):
        raise EditionStateError(
            f"edition {e} changed after it was approved: approve it again "
            f"(`digest edition approve {e}`)"
        )
    return False


def check_sendable(
    edition: Edition, settings: Settings, now: datetime, force: Override | None = None
) -> bool:
    """Raise EditionStateError unless a send of `edition` may start at `now`. Returns whether
    `force` was needed (a late send), for the history."""
    e = edition.id
    tz = settings.publication.tz
    check_approved(edition, tz)
    opens, closes = send_window(edition, settings)
    if now < opens:
        raise EditionStateError(
            f"edition {e}'s week ends at {human.moment(opens, tz)}: it can be sent from then"
        )
    if now > closes:
        if force is None:
            raise EditionStateError(
                f"edition {e}'s send window closed at {human.moment(closes, tz)} "
                f"([newsletter] send_window_hours = {settings.newsletter.send_window_hours}): a "
                "late round-up is refused; send it anyway with --force --reason TEXT"
            )
        return True
    return False
