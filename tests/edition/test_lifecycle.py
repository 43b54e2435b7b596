"""The lifecycle (issue 10): which status changes are allowed, what approval freezes, the send
window, the one override (`--force --reason`), and the history every change leaves behind."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition import edits, lifecycle
from digest.edition.lifecycle import TRANSITIONS, Override
from digest.errors import EditionStateError, UsageError
from digest.store.db import transaction
from digest.store.models import (
    APPROVED,
    CANCELLED,
    DRAFT,
    EDITION_STATUSES,
    SENDING,
    SENT,
    SKIPPED,
    Edition,
    EditionEvent,
    EditionItem,
)
from tests.send_helpers import make_edition

ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
REFUSED = sorted(
    (a, b) for a in EDITION_STATUSES for b in EDITION_STATUSES if b not in TRANSITIONS[a] and a != b
)


def _edition_in(factory: sessionmaker[Session], now: datetime, status: str, **kw) -> int:
    """An edition (two articles per section) in `status`; a draft is unapproved."""
    edition_id = make_edition(factory, now, **kw)
    if status != APPROVED:
        with transaction(factory) as session:
            edition = session.get(Edition, edition_id)
            assert edition is not None
            edition.status = status
            edition.content_hash = None
            edition.approved_at = None
            edition.approved_by = None
    return edition_id


def _state(factory: sessionmaker[Session], edition_id: int) -> tuple[str, str | None, int]:
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        return edition.status, edition.content_hash, len(edition.history)


def _history(factory: sessionmaker[Session], edition_id: int) -> list[EditionEvent]:
    with factory() as session:
        query = select(EditionEvent).where(EditionEvent.edition_id == edition_id)
        return list(session.scalars(query.order_by(EditionEvent.id)))


def test_the_lifecycle_is_the_one_the_issue_describes() -> None:
    assert {s: set(t) for s, t in TRANSITIONS.items()} == {
        DRAFT: {APPROVED, CANCELLED, SKIPPED},
        APPROVED: {DRAFT, SENDING, CANCELLED, SKIPPED},
        SENDING: {SENT},
        SENT: set(),
        CANCELLED: {DRAFT},
        SKIPPED: {DRAFT},
    }


@pytest.mark.parametrize(("before", "after"), ALLOWED)
def test_an_allowed_transition_changes_the_status_and_is_recorded(
    factory: sessionmaker[Session], now: datetime, before: str, after: str
) -> None:
    edition_id = _edition_in(factory, now, before)
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        lifecycle.move(session, edition, after, "ann", now, action="moved", reason="because")
    status, _, _ = _state(factory, edition_id)
    assert status == after
    [event] = _history(factory, edition_id)
    assert (event.actor, event.action, event.from_status, event.to_status, event.reason) == (
        "ann",
        "moved",
        before,
        after,
        "because",
    )


@pytest.mark.parametrize(("before", "after"), REFUSED)
def test_a_refused_transition_raises_and_changes_nothing(
    factory: sessionmaker[Session], now: datetime, before: str, after: str
) -> None:
    edition_id = _edition_in(factory, now, before)
    state = _state(factory, edition_id)
    with (
        pytest.raises(EditionStateError, match=f"edition {edition_id} is {before}"),
        transaction(factory) as session,
    ):
        edition = session.get(Edition, edition_id)
        assert edition is not None
        lifecycle.move(session, edition, after, "ann", now, action="moved")
    assert _state(factory, edition_id) == state


def test_approval_freezes_the_content(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = _edition_in(factory, now, DRAFT)
    edits.change_status(factory, settings, edition_id, "approve", "ann", now)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        assert edition.status == APPROVED
        assert edition.approved_by == "ann" and edition.approved_at == now
        assert edition.content_hash == lifecycle.content_hash(edition)
        assert lifecycle.check_sendable(edition, settings, now) is False


@pytest.mark.parametrize(
    "change",
    [
        "subject",
        "preheader",
        "intro",
        "item title",
        "item order",
        "item section",
        "item removed",
    ],
)
def test_an_edition_changed_after_approval_is_not_sendable(
    factory: sessionmaker[Session], settings: Settings, now: datetime, change: str
) -> None:
    """Anything a reader would see differently, changed behind the lifecycle's back (a script, a
    bug), makes the frozen content stale: the send refuses it."""
    edition_id = make_edition(factory, now)
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        first, second = edition.items[0], edition.items[1]
        if change == "subject":
            edition.subject = "A different subject"
        elif change == "preheader":
            edition.preheader = "Something new"
        elif change == "intro":
            edition.intro = "Another intro"
        elif change == "item title":
            first.title = "A corrected headline"
        elif change == "item order":
            first.position, second.position = second.position, first.position
        elif change == "item section":
            first.section = "Diplomacy"
        else:
            session.delete(first)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.status == APPROVED
        with pytest.raises(EditionStateError, match="changed after it was approved"):
            lifecycle.check_sendable(edition, settings, now)


def test_a_thin_week_is_approved_only_with_an_override(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = _edition_in(factory, now, DRAFT, sections=("Europe",))  # 2 < min_items 5
    with pytest.raises(EditionStateError, match=r"fewer than min_items \(5\).*--force --reason"):
        edits.change_status(factory, settings, edition_id, "approve", "ann", now)
    assert _state(factory, edition_id) == (DRAFT, None, 0)
    edits.change_status(
        factory,
        settings,
        edition_id,
        "approve",
        "ann",
        now,
        force=Override("Thanksgiving week: two strong pieces are enough"),
    )
    [event] = _history(factory, edition_id)
    assert event.action == "approved" and event.to_status == APPROVED
    assert event.forced is True
    assert event.reason == "Thanksgiving week: two strong pieces are enough"
    assert event.detail == "2 articles, fewer than min_items 5; preflight passed (1 variant)"


def test_an_override_not_needed_is_not_recorded_as_forced(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = _edition_in(factory, now, DRAFT)
    edits.change_status(
        factory, settings, edition_id, "approve", "ann", now, force=Override("just in case")
    )
    [event] = _history(factory, edition_id)
    assert event.forced is False and event.to_status == APPROVED


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_an_override_without_a_reason_is_a_usage_error(reason: str) -> None:
    with pytest.raises(UsageError, match="--force needs --reason"):
        Override(reason)
    with pytest.raises(UsageError, match="--force needs --reason"):
        lifecycle.override(True, reason or None)


def test_a_reason_without_force_is_no_override() -> None:
    assert lifecycle.override(False, "late, but fine") is None
    assert lifecycle.override(True, "late, but fine") == Override("late, but fine")


def test_an_edition_overlapping_an_approved_one_cannot_be_approved(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    approved = make_edition(factory, now)
    draft = _edition_in(factory, now, DRAFT)  # cut-off a minute earlier: the same week
    with pytest.raises(EditionStateError, match=f"overlaps edition {approved}, which is approved"):
        edits.change_status(factory, settings, draft, "approve", "ann", now)
    assert _state(factory, draft) == (DRAFT, None, 0)


def test_an_edition_carrying_an_article_already_approved_elsewhere_cannot_be_approved(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    earlier = now - timedelta(days=7)
    first = make_edition(factory, earlier)
    draft = _edition_in(factory, now, DRAFT)
    with transaction(factory) as session:
        taken = session.scalars(
            select(EditionItem).where(EditionItem.edition_id == first).limit(1)
        ).one()
        item = session.scalars(
            select(EditionItem).where(EditionItem.edition_id == draft).limit(1)
        ).one()
        item.article_id = taken.article_id
    with pytest.raises(EditionStateError, match="already in an approved or sent edition"):
        edits.change_status(factory, settings, draft, "approve", "ann", now)
    assert _state(factory, draft) == (DRAFT, None, 0)


@pytest.mark.parametrize("status", [APPROVED, SENDING, SENT, CANCELLED, SKIPPED])
def test_only_a_draft_is_approved(
    factory: sessionmaker[Session], settings: Settings, now: datetime, status: str
) -> None:
    edition_id = _edition_in(factory, now, status)
    state = _state(factory, edition_id)
    with pytest.raises(EditionStateError, match=f"is {status}, not a draft"):
        edits.change_status(factory, settings, edition_id, "approve", "ann", now)
    assert _state(factory, edition_id) == state


def test_cancelling_a_send_under_way_names_the_command_that_stops_it(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = _edition_in(factory, now, SENDING)
    with pytest.raises(EditionStateError, match=f"`digest send cancel {edition_id}`"):
        edits.change_status(factory, settings, edition_id, "cancel", "ann", now)
    assert _state(factory, edition_id)[0] == SENDING


def test_skipping_needs_a_reason_and_a_draft(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    draft = _edition_in(factory, now, DRAFT)
    with pytest.raises(UsageError, match="needs --reason"):
        edits.change_status(factory, settings, draft, "skip", "ann", now, reason=" ")
    approved = make_edition(factory, now - timedelta(days=7))
    with pytest.raises(EditionStateError, match="only a draft is skipped"):
        edits.change_status(factory, settings, approved, "skip", "ann", now, reason="quiet")
    edits.change_status(factory, settings, draft, "skip", "ann", now, reason="office closed")
    with factory() as session:
        edition = session.get(Edition, draft)
        assert edition is not None
        assert (edition.status, edition.status_reason) == (SKIPPED, "office closed")


# The send window: from the cut-off until [newsletter] send_window_hours (24) after it.


@pytest.fixture
def approved(factory: sessionmaker[Session], now: datetime) -> Edition:
    edition_id = make_edition(factory, now)  # cut-off: now
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        _ = edition.items, edition.history
        return edition


def test_the_send_window_runs_from_the_cutoff_for_send_window_hours(
    approved: Edition, settings: Settings, now: datetime
) -> None:
    assert settings.newsletter.send_window_hours == 24
    assert lifecycle.send_window(approved, settings) == (now, now + timedelta(hours=24))


def test_a_send_before_the_cutoff_is_refused_even_with_an_override(
    approved: Edition, settings: Settings, now: datetime
) -> None:
    early = now - timedelta(minutes=1)
    with pytest.raises(EditionStateError, match="week ends at 2026-11-20 09:00 EST"):
        lifecycle.check_sendable(approved, settings, early)
    with pytest.raises(EditionStateError, match="can be sent from then"):
        lifecycle.check_sendable(approved, settings, early, Override("the news cannot wait"))


@pytest.mark.parametrize("after", [timedelta(0), timedelta(hours=1), timedelta(hours=24)])
def test_a_send_inside_the_window_needs_no_override(
    approved: Edition, settings: Settings, now: datetime, after: timedelta
) -> None:
    assert lifecycle.check_sendable(approved, settings, now + after) is False


def test_a_late_send_is_refused_without_an_override(
    approved: Edition, settings: Settings, now: datetime
) -> None:
    late = now + timedelta(hours=24, minutes=1)
    with pytest.raises(EditionStateError) as info:
        lifecycle.check_sendable(approved, settings, late)
    message = str(info.value)
    assert "send window closed at 2026-11-21 09:00 EST" in message
    assert "send_window_hours = 24" in message and "--force --reason TEXT" in message


def test_a_late_send_with_an_override_goes_and_says_it_was_forced(
    approved: Edition, settings: Settings, now: datetime
) -> None:
    late = now + timedelta(days=3)
    assert lifecycle.check_sendable(approved, settings, late, Override("ESP outage")) is True


def test_the_window_follows_send_window_hours(
    approved: Edition, settings: Settings, now: datetime
) -> None:
    newsletter = settings.newsletter.model_copy(update={"send_window_hours": 72})
    wider = settings.model_copy(update={"newsletter": newsletter})
    assert lifecycle.check_sendable(approved, wider, now + timedelta(hours=48)) is False


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (DRAFT, "is a draft, not approved: .*`digest edition approve {id}`"),
        (SENDING, "already being sent.*`digest send --resume {id}`"),
        (SENT, "was already sent"),
        (CANCELLED, "is cancelled: it will not be sent"),
        (SKIPPED, "is skipped: it will not be sent"),
    ],
)
def test_only_an_approved_edition_is_sendable(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    status: str,
    message: str,
) -> None:
    edition_id = _edition_in(factory, now, status)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        with pytest.raises(EditionStateError, match=message.format(id=edition_id)):
            lifecycle.check_sendable(edition, settings, now, Override("anyway"))


def test_the_history_says_who_did_what_when_and_why(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = _edition_in(factory, now, DRAFT)
    later = now + timedelta(minutes=5)
    edits.change_status(factory, settings, edition_id, "approve", "ann", now)
    edits.change_status(
        factory, settings, edition_id, "unapprove", "bob", later, reason="wrong photo"
    )
    edits.change_status(
        factory, settings, edition_id, "cancel", "carol", later, reason="merged with next week"
    )
    rows = [
        (e.at, e.actor, e.action, e.from_status, e.to_status, e.reason)
        for e in _history(factory, edition_id)
    ]
    assert rows == [
        (now, "ann", "approved", DRAFT, APPROVED, None),
        (later, "bob", "unapproved", APPROVED, DRAFT, "wrong photo"),
        (later, "carol", "cancelled", DRAFT, CANCELLED, "merged with next week"),
    ]
    status, frozen, _ = _state(factory, edition_id)
    assert (status, frozen) == (CANCELLED, None)
