"""run_due, the one core function behind `digest schedule` and `digest run-due`, with an
injected clock: the draft built ahead of the slot, the wait for approval, the send, the skips
and their reasons, a restart after a missed slot, DST, and what staff are told each time (the
notes read back from the outbox's .eml files)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, RecipientStatus
from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition import edits
from digest.edition.build import build_edition
from digest.edition.lifecycle import content_hash
from digest.schedule.due import DueReport, run_due
from digest.schedule.steps import AUTO_ACTOR
from digest.store.db import transaction
from digest.store.models import Edition
from tests.schedule_helpers import (
    SLOT,
    STAFF,
    actions,
    at,
    deliveries,
    edition_at,
    hours,
    notes,
    runs,
    subjects,
    with_newsletter,
    with_schedule,
)
from tests.send_helpers import add_subscribers, make_edition, with_delivery

READERS = 6
CLOSES = SLOT + timedelta(hours=24)


@pytest.fixture
def audience(factory: sessionmaker[Session]) -> None:
    add_subscribers(factory, READERS, SLOT - timedelta(days=30))


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.outbox_path


def due(factory: sessionmaker[Session], settings: Settings, moment: datetime, **kw) -> DueReport:
    return run_due(factory, settings, clock=at(moment), **kw)


def sent_files(outbox: Path, edition_id: int = 1) -> int:
    return len(list((outbox / f"edition-{edition_id}").glob("*.eml")))


def only(report: DueReport) -> tuple[str, str, str]:
    [result] = report.results
    return result.step, result.state, result.message


def broken(settings: Settings) -> Settings:
    """No source can be read: every build fails (GatherError, exit 4)."""
    gone = settings.sources[0].model_copy(update={"url": "examples/feeds/missing.xml"})
    return settings.model_copy(update={"sources": [gone]})


# --- approval = "require" (the default) ------------------------------------------------------


def test_require_builds_ahead_waits_for_approval_and_sends_once(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings)
    assert due(factory, s, SLOT - hours(24.5)).results == []  # before the build lead
    report = due(factory, s, SLOT - hours(24))
    step, state, message = only(report)
    assert (step, state) == ("build", "done")
    assert message.startswith("built edition 1 (") and "preflight passed" in message
    assert report.results[0].told == STAFF and report.exit_code == 0
    edition = edition_at(factory, SLOT)
    assert edition is not None and edition.status == "draft"
    assert edition.cutoff == SLOT and edition.window_start == SLOT - timedelta(days=7)
    assert subjects(outbox) == [
        "[The Weekly Round-up] Edition 1 is ready for review: it goes out 2026-11-20 09:00 EST "
        "once approved"
    ]
    assert due(factory, s, SLOT - hours(1)).results == []  # nothing more until the slot

    assert only(due(factory, s, SLOT))[:2] == ("send", "waiting")
    assert subjects(outbox)[-1] == (
        "[The Weekly Round-up] Edition 1 is not approved: nothing was sent at 2026-11-20 09:00 EST"
    )
    again = due(factory, s, SLOT + timedelta(minutes=1))
    assert again.results[0].state == "waiting" and again.results[0].repeat
    assert again.news == [] and len(subjects(outbox)) == 2  # told once, not every minute

    edits.change_status(factory, s, 1, "approve", "ann", SLOT + hours(2))
    step, state, message = only(due(factory, s, SLOT + hours(2)))
    assert (step, state, message) == ("send", "done", f"sent edition 1: {READERS} accepted")
    assert deliveries(factory) == READERS and sent_files(outbox) == READERS
    assert due(factory, s, SLOT + hours(3)).results == []
    assert due(factory, s, CLOSES + hours(1)).results == []
    assert deliveries(factory) == READERS
    assert actions(factory) == [
        ("built", "digest"),
        ("approved", "ann"),
        ("send started", "digest"),
        ("sent", "digest"),
    ]
    assert subjects(outbox)[-1] == "[The Weekly Round-up] Edition 1 was sent"


def test_an_edition_approved_before_the_slot_goes_out_at_the_slot(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings)
    due(factory, s, SLOT - hours(24))
    edits.change_status(factory, s, 1, "approve", "ann", SLOT - hours(2))
    assert due(factory, s, SLOT - timedelta(seconds=1)).results == []
    assert sent_files(outbox) == 0
    assert only(due(factory, s, SLOT))[:2] == ("send", "done")
    assert sent_files(outbox) == READERS


def test_not_approved_by_the_end_of_the_window_is_skipped_with_the_reason(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings)
    due(factory, s, SLOT - hours(24))
    due(factory, s, SLOT)
    assert only(due(factory, s, CLOSES))[1] == "waiting"  # the window's last moment
    step, state, message = only(due(factory, s, CLOSES + timedelta(minutes=1)))
    reason = "not approved before its send window closed at 2026-11-21 09:00 EST"
    assert (step, state, message) == ("send", "skipped", f"edition 1 skipped: {reason}")
    edition = edition_at(factory, SLOT)
    assert edition is not None and (edition.status, edition.status_reason) == ("skipped", reason)
    assert actions(factory)[-1] == ("skipped", "digest")
    note = notes(outbox)[-1]
    assert note.subject == f"[The Weekly Round-up] Edition 1 was not sent: {reason}"
    assert reason in note.flat and "digest build --now 2026-11-20T09:00-05:00" in note.flat
    assert deliveries(factory) == 0
    assert due(factory, s, CLOSES + hours(2)).results == []


# --- approval = "auto" -----------------------------------------------------------------------


def test_auto_rebuilds_at_the_slot_approves_and_sends(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings, approval="auto")
    assert only(due(factory, s, SLOT - hours(24)))[:2] == ("build", "done")
    assert "the schedule rebuilds it" in notes(outbox)[0].flat
    edits.set_text(factory, s, 1, "intro", "Edited by the desk.", "ann", SLOT - hours(3))
    step, state, message = only(due(factory, s, SLOT))
    assert (step, state, message) == ("send", "done", f"sent edition 1: {READERS} accepted")
    assert actions(factory) == [
        ("built", "digest"),
        ("edited", "ann"),
        ("rebuilt", "digest"),
        ("approved", AUTO_ACTOR),
        ("send started", "digest"),
        ("sent", "digest"),
    ]
    edition = edition_at(factory, SLOT)
    assert edition is not None and edition.approved_by == "digest (auto)"
    assert edition.intro == "Edited by the desk."  # the staff's edit survived the rebuild
    assert sent_files(outbox) == READERS
    assert due(factory, s, SLOT + timedelta(minutes=1)).results == []


def test_auto_with_a_failing_preflight_skips_and_tells_staff(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings, approval="auto")
    due(factory, s, SLOT - hours(24))
    long_subject = "A subject that goes on " + "and on " * 16 + "until the inbox cuts it"
    assert len(long_subject) == 158
    edits.set_text(factory, s, 1, "subject", long_subject, "ann", SLOT - hours(1))
    report = due(factory, s, SLOT)
    step, state, message = only(report)
    assert (step, state) == ("send", "skipped") and report.exit_code == 0
    assert message.startswith("edition 1 skipped: preflight failed: [")
    assert "subject: the subject has 158 characters (limit 100)" in message
    edition = edition_at(factory, SLOT)
    assert edition is not None and edition.status == "skipped"
    assert all(actor != AUTO_ACTOR for _, actor in actions(factory))  # never approved
    assert deliveries(factory) == 0 and sent_files(outbox) == 0
    note = notes(outbox)[-1]
    assert note.subject.startswith("[The Weekly Round-up] Edition 1 was not sent: preflight failed")
    assert (
        "Preflight: FAILED" in note.flat
        and "subject: the subject has 158 characters (limit 100)" in note.flat
    )


def test_an_approved_edition_that_fails_preflight_at_the_slot_is_skipped(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    """The send runs preflight itself (before anything is frozen): a failure is a skip with
    its reason, and staff are told, under either approval mode."""
    edition_id = make_edition(factory, SLOT)
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        edition.subject = "S" * 120  # approved by hand in the database, past the gate
        edition.content_hash = content_hash(edition)
    step, state, message = only(due(factory, with_schedule(settings), SLOT))
    assert (step, state) == ("send", "skipped")
    assert "preflight failed: [" in message and "the subject has 120 characters" in message
    assert deliveries(factory) == 0 and sent_files(outbox) == 0
    assert notes(outbox)[-1].subject.startswith(
        "[The Weekly Round-up] Edition 1 was not sent: preflight failed"
    )


# --- failures and thin weeks -----------------------------------------------------------------


def test_a_failed_build_tells_staff_and_nothing_is_sent(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = broken(with_schedule(settings))
    report = due(factory, s, SLOT - hours(24))
    step, state, message = only(report)
    assert (step, state) == ("build", "failed") and report.exit_code == 4
    assert message.startswith("build failed: no source could be read (")
    assert edition_at(factory, SLOT) is None
    note = notes(outbox)[0]
    assert note.subject == "[The Weekly Round-up] The build for 2026-11-20 09:00 EST failed"
    assert "missing.xml" in note.flat and "Nothing is sent unless an edition" in note.flat
    assert "digest build --now 2026-11-20T09:00-05:00" in note.flat

    waiting = due(factory, s, SLOT)
    assert only(waiting)[:2] == ("send", "waiting") and waiting.exit_code == 0
    assert subjects(outbox)[-1].endswith(
        "Nothing to send at 2026-11-20 09:00 EST: no edition was built"
    )
    closed = due(factory, s, CLOSES + timedelta(minutes=5))
    assert only(closed)[:2] == ("send", "skipped")
    assert "nothing was built or sent for it" in only(closed)[2]
    assert deliveries(factory) == 0


def test_auto_builds_again_at_the_slot_and_a_second_failure_sends_nothing(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = broken(with_schedule(settings, approval="auto"))
    assert "At 2026-11-20 09:00 EST the schedule builds it again" in (
        due(factory, s, SLOT - hours(24)) and notes(outbox)[0].flat
    )
    report = due(factory, s, SLOT)
    assert only(report)[:2] == ("send", "failed") and report.exit_code == 4
    assert deliveries(factory) == 0
    assert len(notes(outbox)) == 2 * len(STAFF)


def test_a_thin_week_is_skipped_and_staff_are_told_why(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_newsletter(with_schedule(settings), min_items=50)
    report = due(factory, s, SLOT - hours(24))
    step, state, message = only(report)
    assert (step, state) == ("build", "skipped") and report.exit_code == 0
    assert message.startswith("thin week: only ") and "(min_items is 50)" in message
    edition = edition_at(factory, SLOT)
    assert edition is not None and edition.status == "skipped"
    note = notes(outbox)[0]
    assert (
        note.subject
        == "[The Weekly Round-up] No edition for 2026-11-20 09:00 EST: too few articles"
    )
    assert "(min_items is 50)" in note.flat
    assert only(due(factory, s, SLOT))[1] == "waiting"  # staff may still rebuild it
    assert len(notes(outbox)) == len(STAFF)  # but they were told already
    closed = due(factory, s, CLOSES + hours(1))
    assert only(closed)[:2] == ("send", "skipped") and deliveries(factory) == 0


def test_auto_tries_a_thin_week_again_at_the_slot(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_newsletter(with_schedule(settings, approval="auto"), min_items=50)
    due(factory, s, SLOT - hours(24))
    step, state, message = only(due(factory, s, SLOT))
    assert (step, state) == ("send", "skipped") and message.startswith("thin week: ")
    assert [a for a, _ in actions(factory)] == ["built", "skipped", "rebuilt", "skipped"]
    assert deliveries(factory) == 0


def test_staff_who_skip_or_cancel_a_week_are_obeyed(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings, approval="auto")
    due(factory, s, SLOT - hours(24))
    edits.change_status(factory, s, 1, "skip", "ann", SLOT - hours(2), reason="office closed")
    step, state, message = only(due(factory, s, SLOT))
    assert (step, state) == ("send", "skipped")
    assert message == "edition 1 is skipped (office closed)"
    assert [a for a, _ in actions(factory)] == ["built", "skipped"] and deliveries(factory) == 0


# --- restarts ----------------------------------------------------------------------------------


def test_a_restart_inside_the_window_sends_the_missed_slot_once(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings, approval="auto")
    report = due(factory, s, SLOT + hours(3))  # down at the build and at the slot
    assert only(report)[:2] == ("send", "done")
    assert [a for a, _ in actions(factory)] == ["built", "approved", "send started", "sent"]
    assert due(factory, s, SLOT + hours(3)).results == []
    assert sent_files(outbox) == READERS and deliveries(factory) == READERS


def test_a_restart_after_the_window_skips_the_approved_edition(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings)
    build_edition(factory, s, SLOT - hours(30), cutoff=SLOT, actor="ann")
    edits.change_status(factory, s, 1, "approve", "ann", SLOT - hours(29))
    assert only(due(factory, s, SLOT - hours(24)))[:3] == (
        "build",
        "done",
        "edition 1 is approved: not rebuilt",
    )
    # ... and the scheduler was down from then until after the send window closed.
    step, state, message = only(due(factory, s, CLOSES + hours(6)))
    reason = "its send window closed at 2026-11-21 09:00 EST before it was sent"
    assert (step, state, message) == ("send", "skipped", f"edition 1 skipped: {reason}")
    assert deliveries(factory) == 0
    assert notes(outbox)[-1].subject == f"[The Weekly Round-up] Edition 1 was not sent: {reason}"


def test_a_slot_missed_entirely_is_recorded_once_the_schedule_has_run_before(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings)
    # A new installation's first run, long after a slot: nothing to say about that slot.
    assert due(factory, s, CLOSES + hours(1)).results == []
    assert runs(factory) == {}
    # It builds a draft for the slot, then is down through that slot and the next one.
    due(factory, s, SLOT - hours(24))
    nxt = SLOT + timedelta(days=7)
    report = due(factory, s, nxt + hours(30))
    by_slot = {r.slot: (r.step, r.state, r.message) for r in report.results}
    assert by_slot == {
        SLOT: (
            "send",
            "skipped",
            "edition 1 skipped: not approved before its send window closed at 2026-11-21 09:00 EST",
        ),
        nxt: (
            "send",
            "skipped",
            "missed: nothing was built or sent for it before its send window closed at "
            "2026-11-28 09:00 EST",
        ),
    }
    assert subjects(outbox)[-1] == "[The Weekly Round-up] Nothing was sent for 2026-11-27 09:00 EST"
    assert due(factory, s, nxt + hours(31)).results == []


# --- a send interrupted, another sender, notes that fail ------------------------------------


def test_a_send_stopped_by_sigterm_is_continued_by_the_next_run(
    factory: sessionmaker[Session], settings: Settings, outbox: Path
) -> None:
    add_subscribers(factory, 15, SLOT - timedelta(days=30))
    make_edition(factory, SLOT)
    s = with_delivery(with_schedule(settings), batch_size=5, concurrency=1)
    stopping = [False]

    def first_batch_then_sigterm(batch: Batch) -> list[RecipientStatus]:
        stopping[0] = True
        return [RecipientStatus(r.delivery_id, "accepted") for r in batch.recipients]

    first = MemoryBackend(first_batch_then_sigterm)
    report = due(factory, s, SLOT, backend=first, stop=lambda: stopping[0])
    step, state, message = only(report)
    assert (step, state) == ("send", "interrupted")
    assert len([e for e in first.sent_to if e.startswith("user")]) == 5
    assert "paused (stopped by SIGTERM)" in message
    second = MemoryBackend()
    step, state, message = only(due(factory, s, SLOT + timedelta(minutes=1), backend=second))
    assert (step, state) == ("send", "done")
    newsletter = [e for e in first.sent_to + second.sent_to if e.startswith("user")]
    assert sorted(newsletter) == sorted(f"user{i}@example.com" for i in range(15))


def test_an_edition_someone_sent_by_hand_is_not_sent_again(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    from digest.send.engine import send_edition

    s = with_schedule(settings)
    make_edition(factory, SLOT)
    send_edition(factory, s, now=SLOT, actor="ann")
    assert only(due(factory, s, SLOT + timedelta(minutes=1)))[:3] == (
        "send",
        "done",
        "edition 1 is sent",
    )
    assert deliveries(factory) == READERS


def test_a_note_that_cannot_be_sent_is_reported_and_the_work_goes_on(
    factory: sessionmaker[Session], settings: Settings, audience: None
) -> None:
    s = with_schedule(settings)
    refusing = MemoryBackend(
        lambda batch: [
            RecipientStatus(r.delivery_id, "failed", reason="550 no such user")
            for r in batch.recipients
        ]
    )
    [result] = due(factory, s, SLOT - hours(24), backend=refusing).results
    assert (result.step, result.state, result.told) == ("build", "done", [])
    assert result.note_error is not None and "550 no such user" in result.note_error


def test_without_notify_addresses_nobody_is_mailed(
    factory: sessionmaker[Session], settings: Settings, audience: None, outbox: Path
) -> None:
    s = with_schedule(settings, notify=[])
    [result] = due(factory, s, SLOT - hours(24)).results
    assert result.state == "done" and result.told == [] and result.note_error is None
    assert not (outbox / "edition-0-tests").exists()
    assert only(due(factory, s, SLOT))[1] == "waiting"
    assert due(factory, s, SLOT + timedelta(minutes=1)).news == []


# --- DST, with an injected clock ---------------------------------------------------------------


def test_spring_forward_the_0230_slot_is_sent_at_0300(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    slot = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the moment 02:30 would have been
    add_subscribers(factory, 3, slot - timedelta(days=30))
    make_edition(factory, slot)
    s = with_schedule(settings, cron="30 2 * * *", build_lead_hours=0)
    backend = MemoryBackend()
    before = due(factory, s, slot - timedelta(seconds=1), backend=backend)
    assert all(r.slot != slot for r in before.results)
    assert [e for e in backend.sent_to if e.startswith("user")] == []
    report = due(factory, s, slot, backend=backend)
    assert [(r.step, r.state) for r in report.results if r.slot == slot] == [("send", "done")]
    assert len([e for e in backend.sent_to if e.startswith("user")]) == 3


def test_fall_back_the_repeated_0130_is_sent_once_at_the_first(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, the same wall time again
    add_subscribers(factory, 3, first - timedelta(days=30))
    make_edition(factory, first)
    make_edition(factory, second)  # an approved edition sitting at the repeat: never a slot
    s = with_schedule(settings, cron="30 1 * * *", build_lead_hours=0)
    backend = MemoryBackend()
    report = due(factory, s, first, backend=backend)
    sends = [(r.step, r.state) for r in report.results if r.slot == first and r.step == "send"]
    assert sends == [("send", "done")]
    later = due(factory, s, second, backend=backend)
    assert all(r.slot != second for r in later.results)
    assert len([e for e in backend.sent_to if e.startswith("user")]) == 3
    with factory() as session:
        statuses = dict(session.execute(select(Edition.cutoff, Edition.status)).all())
    assert statuses == {first: "sent", second: "approved"}


def test_a_build_that_loses_to_another_process_that_approved_meanwhile_is_no_failure(
    factory: sessionmaker[Session],
    settings: Settings,
    audience: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process (a person, a second scheduler) built and approved the slot's edition
    while this build gathered: this build is refused, and that is not a failure."""
    from digest.errors import EditionStateError
    from digest.schedule import steps

    s = with_schedule(settings)

    def beaten(*args, **kwargs):  # type: ignore[no-untyped-def]
        build_edition(factory, s, SLOT - hours(25), cutoff=SLOT, actor="ann")
        edits.change_status(factory, s, 1, "approve", "ann", SLOT - hours(25))
        raise EditionStateError("edition 1 for this week is already approved; it cannot be rebuilt")

    monkeypatch.setattr(steps, "build_edition", beaten)
    report = due(factory, s, SLOT - hours(24))
    assert only(report) == ("build", "done", "edition 1 is approved: not rebuilt")
    assert report.exit_code == 0


def test_an_edition_changed_elsewhere_at_every_try_is_left_to_the_next_run(
    factory: sessionmaker[Session],
    settings: Settings,
    audience: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build or an edit in another process won the optimistic lock twice: no decision is
    taken (no skip), and the next run approves and sends."""
    from digest.edition.lifecycle import EditionChanged
    from digest.schedule import steps

    s = with_schedule(settings, approval="auto")
    due(factory, s, SLOT - hours(24))
    calls = []

    def changed(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        raise EditionChanged("edition 1 was changed by someone else meanwhile")

    with monkeypatch.context() as patch:
        patch.setattr(steps.edits, "change_status", changed)
        step, state, message = only(due(factory, s, SLOT))
    assert (step, state) == ("send", "waiting") and len(calls) == 2
    assert message == (
        "edition 1 was changed elsewhere meanwhile (a build or an edit); the next run decides"
    )
    edition = edition_at(factory, SLOT)
    assert edition is not None and edition.status == "draft"
    step, state, _ = only(due(factory, s, SLOT + timedelta(minutes=1)))
    assert (step, state) == ("send", "done") and deliveries(factory) == READERS
