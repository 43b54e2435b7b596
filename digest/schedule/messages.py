"""What each note to staff says: one function per thing the schedule can tell them.

Every note says what happened to which slot and edition, what will happen next (or that
nothing will), and the commands that change it. The wording lives here, apart from the steps
that decide and from the module that mails, so that one can be read without the others.
"""

from __future__ import annotations

from datetime import datetime

from digest.schedule.checks import Preflight
from digest.schedule.notices import EditionBrief, Notice, at
from digest.schedule.slots import Slots

SHOW = "Look at it"
PREVIEW = "Preview the email"
APPROVE = "Approve it"
API = "Or approve it through the staff API (a publisher's token or session)"


def built(
    edition: EditionBrief,
    preflight: Preflight,
    slot: datetime,
    closes: datetime,
    auto: bool,
    slots: Slots,
) -> Notice:
    e, when = edition.id, slots.local(slot)
    if auto:
        summary = (
            f"Edition {e}, for {when}, is built. At {when} the schedule rebuilds it (late "
            "articles join, your edits are kept), approves it if preflight passes, and sends it."
        )
        commands = [
            (SHOW, f"digest edition show {e}"),
            (PREVIEW, f"digest preview --edition {e}"),
            ("Hold it (no email this week)", f'digest edition skip {e} --reason "..."'),
        ]
    else:
        summary = (
            f"Edition {e}, for {when}, is built and waits for your approval: nothing is sent "
            f"unless it is approved. Approved, it goes out at {when}, or as soon as it is "
            f"approved after that, until its send window closes at {slots.local(closes)}."
        )
        commands = [
            (SHOW, f"digest edition show {e}"),
            (PREVIEW, f"digest preview --edition {e}"),
            ("Send yourself a test", f"digest send --edition {e} --test-to you@example.com"),
            (APPROVE, f"digest edition approve {e}"),
            (API, f"POST {edition.api}/approve"),
        ]
    return Notice(
        subject=f"Edition {e} is ready for review: it goes out {when}"
        + ("" if auto else " once approved"),
        summary=summary,
        edition=edition,
        preflight=preflight,
        commands=tuple(commands),
    )


def thin(edition: EditionBrief | None, reason: str, slot: datetime, slots: Slots) -> Notice:
    when = slots.local(slot)
    return Notice(
        subject=f"No edition for {when}: too few articles",
        summary=f"The week before {when} is too thin for an edition: {reason}. Nothing will be "
        "sent for it; its articles wait for the next edition.",
        details=("To send it anyway, pin articles into it, build it again and approve it.",),
        edition=edition,
        commands=(("Build it again", f"digest build --now {at(slot, slots)}"),),
    )


def build_failed(
    error: str, slot: datetime, closes: datetime, retried_at_slot: bool, slots: Slots
) -> Notice:
    when = slots.local(slot)
    later = (
        f"At {when} the schedule builds it again."
        if retried_at_slot
        else f"Nothing is sent unless an edition for {when} is built and approved before its "
        f"send window closes at {slots.local(closes)}."
    )
    return Notice(
        subject=f"The build for {when} failed",
        summary=f"Building the edition for {when} failed: {error}. {later}",
        commands=(
            ("Check the sources", "digest sources check"),
            ("Build it by hand", f"digest build --now {at(slot, slots)}"),
        ),
    )


def waiting(edition: EditionBrief | None, slot: datetime, closes: datetime, slots: Slots) -> Notice:
    when, until = slots.local(slot), slots.local(closes)
    if edition is None:
        return Notice(
            subject=f"Nothing to send at {when}: no edition was built",
            summary=f"The slot {when} has come and no edition was built for it. Build one and "
            f"approve it before {until} and it goes out at once.",
            commands=(("Build it", f"digest build --now {at(slot, slots)}"),),
        )
    return Notice(
        subject=f"Edition {edition.id} is not approved: nothing was sent at {when}",
        summary=f"The slot {when} has come and edition {edition.id} is not approved, so nothing "
        f"was sent. Approved before {until}, it goes out at once; after that it is skipped.",
        edition=edition,
        commands=(
            (SHOW, f"digest edition show {edition.id}"),
            (APPROVE, f"digest edition approve {edition.id}"),
            (API, f"POST {edition.api}/approve"),
        ),
    )


def skipped(
    edition: EditionBrief | None,
    reason: str,
    slot: datetime,
    preflight: Preflight | None,
    slots: Slots,
) -> Notice:
    when = slots.local(slot)
    if edition is None:
        return Notice(
            subject=f"Nothing was sent for {when}",
            summary=f"Nothing was sent for {when}: {reason}.",
        )
    e = edition.id
    return Notice(
        subject=f"Edition {e} was not sent: {reason}"[:150],
        summary=f"Edition {e}, for {when}, was not sent and is recorded as skipped: {reason}. "
        "Its articles wait for the next edition.",
        details=(
            "To send it after all: build it again (your edits are kept), approve it, and send "
            "it (with --force --reason TEXT once its send window has closed).",
        ),
        edition=edition,
        preflight=preflight,
        commands=(
            ("Build it again", f"digest build --now {at(slot, slots)}"),
            (APPROVE, f"digest edition approve {e}"),
            ("Send it", f"digest send --edition {e}"),
        ),
    )


def send_failed(edition_id: int, error: str, slot: datetime, slots: Slots) -> Notice:
    return Notice(
        subject=f"The send of edition {edition_id} failed",
        summary=f"Sending edition {edition_id}, for {slots.local(slot)}, failed: {error}.",
        commands=(
            ("See how far it got", f"digest send status {edition_id}"),
            ("Continue it once the cause is fixed", f"digest send --resume {edition_id}"),
        ),
    )


def interrupted(edition_id: int, why: str, slot: datetime, slots: Slots) -> Notice:
    return Notice(
        subject=f"The send of edition {edition_id} stopped: {why}",
        summary=f"Sending edition {edition_id}, for {slots.local(slot)}, stopped: {why}. The "
        "schedule continues it at its next run.",
        commands=(("See how far it got", f"digest send status {edition_id}"),),
    )


def sent(edition: EditionBrief, counts: str, slot: datetime, slots: Slots) -> Notice:
    return Notice(
        subject=f"Edition {edition.id} was sent",
        summary=f"Edition {edition.id}, for {slots.local(slot)}, was sent: {counts}.",
        edition=edition,
        commands=(("Its numbers", f"digest send status {edition.id}"),),
    )


def step_failed(error: str, slot: datetime, slots: Slots) -> Notice:
    """A send step that broke before it knew more (a bug, or the database went away)."""
    when = slots.local(slot)
    return Notice(
        subject=f"The schedule failed at {when}",
        summary=f"The send step for {when} failed: {error}. Nothing more is tried for this "
        "slot; see the log of `digest schedule` (or of `digest run-due`).",
        commands=(
            ("See the editions", "digest edition list"),
            ("See the schedule", "digest status"),
        ),
    )
