"""Sending an edition: freeze the audience, run workers over the ledger, resume after a crash.

Every (edition, subscriber) gets a Delivery row, in a planned batch, before any provider call
(planning.plan). A worker claims a batch of one variant and commits; marks it submitted and
commits; only then calls the provider; then records the answer (docs/design.md §3). So after a crash
`claimed` rows are safe to send again and `submitted` ones are uncertain until ESP events settle
them (reconcile).

This module never imports sendgrid or smtplib: it talks to an EmailBackend (docs/design.md §4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, EmailBackend, RecipientStatus
from digest.config import Settings
from digest.edition.options import branding
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import EditionStateError
from digest.ledger import moves, registry, tally
from digest.ledger.reconcile import reconcile
from digest.render.email import render_edition
from digest.send import worker as workers
from digest.send.compose import Composer
from digest.send.plan import BATCH_SIZE, plan
from digest.send.worker import Runtime, Worker, WorkerReport
from digest.store.db import transaction
from digest.store.models import (
    APPROVED,
    DRAFT,
    PLANNED,
    SEND_CANCELLED,
    SEND_FINISHED,
    SEND_RUNNING,
    SENDING,
    SENT,
    SUBMITTED,
)
from subscribers.lifecycle import recipients_for

Progress = Callable[[int], None]

__all__ = ["Runtime", "SendReport", "dry_run", "send_edition", "send_test"]


@dataclass
class SendReport:
    edition_id: int
    planned: int
    counts: Counter[str] = field(default_factory=Counter)
    variants: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    resumed: bool = False
    released: int = 0
    reconciled: int = 0
    uncertain: list[int] = field(default_factory=list)
    resent: int = 0
    stopped: str | None = None
    finished: bool = False
    # Recipients this run set out to settle (the progress bar's total).
    todo: int = 0


def dry_run(
    factory: sessionmaker[Session], settings: Settings, edition_id: int | None, now: datetime
) -> SendReport:
    """Who would get what, each variant rendered to prove it renders; nothing is written."""
    with factory() as session:
        edition = get_edition(session, edition_id)
        variants: Counter[str] = Counter(
            moves.variant_key(a.sections) for a in recipients_for(session, edition.sections, now)
        )
        view = edition_view(edition)
    for key in variants:
        render_edition(view, branding(settings), key.split("|"))
    return SendReport(
        edition_id=edition.id, planned=sum(variants.values()), variants=dict(variants), dry_run=True
    )


def begin(
    factory: sessionmaker[Session],
    edition_id: int | None,
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
) -> SendReport:
    """Start a send: the edition becomes `sending` and its audience is frozen, atomically, in
    batches of `batch_size` (the workers' size: `worker.batch_size`; a claim for fewer splits
    the rest off, which costs a write per row moved)."""
    with transaction(factory) as session:
        registry.write_first(session)
        edition = get_edition(session, edition_id)
        if edition.status == SENT:
            raise EditionStateError(f"edition {edition.id} was already sent at {edition.sent_at}")
        if edition.status not in (DRAFT, APPROVED):
            raise EditionStateError(
                f"edition {edition.id} is already being sent (started {edition.send_started_at}); "
                f"after a crash continue it with `digest send --resume {edition.id}`"
            )
        edition.status = SENDING
        edition.send_started_at = now
        planned = plan(session, edition.id, edition.sections, now, batch_size)
        registry.start(session, edition.id, planned.recipients, planned.batches, now)
        count = planned.recipients
        return SendReport(edition_id=edition.id, planned=count, todo=count)


def resume(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    now: datetime,
    *,
    resend_uncertain: bool = False,
) -> SendReport:
    """Pick a send up after a crash (or a cancel): crashed workers' claimed rows go back to
    planned; their submitted rows are settled from ESP events; what stays uncertain is listed,
    and sent again only when `resend_uncertain` says so."""
    with transaction(factory) as session:
        registry.write_first(session)
        edition = get_edition(session, edition_id)
        sent = registry.send_state(session, edition.id)
        if edition.status != SENDING or sent is None:
            raise EditionStateError(
                f"edition {edition.id} is {edition.status}, not being sent: nothing to resume"
                + (
                    ""
                    if edition.status == SENT
                    else f" (start it with `digest send --edition {edition.id}`)"
                )
            )
        registry.set_state(session, edition.id, SEND_RUNNING, now)
        live = registry.live_workers(session, edition.id, now, settings.delivery.worker_timeout)
        report = SendReport(edition_id=edition.id, planned=sent.planned, resumed=True)
        report.released = moves.release_orphans(session, edition.id, live, now)
        settled = reconcile(session, tally.uncertain(session, edition.id, live), now)
        report.reconciled = len(settled.accepted) + len(settled.failed)
        report.uncertain = settled.uncertain
        if resend_uncertain and settled.uncertain:
            report.resent = moves.move_ids(
                session,
                settled.uncertain,
                SUBMITTED,
                PLANNED,
                now,
                error="sent again with --resend-uncertain (no confirmation after a crash)",
            )
            report.uncertain = []
        report.todo = tally.pending(session, edition.id)
    return report


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    edition_id: int,
    *,
    runtime: Runtime | None = None,
    progress: Progress | None = None,
) -> WorkerReport:
    """One worker on this send until nothing is left to claim (or cancel / warm-up cap)."""
    runtime = runtime or Runtime()
    now = runtime.clock()
    with factory() as session:
        edition = get_edition(session, edition_id)
        if edition.status != SENDING:
            raise EditionStateError(f"edition {edition.id} is {edition.status}, not being sent")
        view = edition_view(edition)
    composer = Composer(settings, view, now, settings.secret_keys())
    worker = Worker(factory, settings, backend, edition_id, composer, runtime, progress)
    return worker.run()


def finish(
    factory: sessionmaker[Session], edition_id: int, now: datetime
) -> tuple[Counter[str], bool]:
    """The edition is `sent` once no row is planned, claimed, deferred or submitted."""
    with transaction(factory) as session:
        registry.write_first(session)
        counts = tally.counts(session, edition_id)
        state = registry.send_state(session, edition_id)
        open_rows = sum(counts[s] for s in moves.UNFINISHED)
        if open_rows or state is None or state.state == SEND_CANCELLED:
            return counts, False
        edition = get_edition(session, edition_id)
        if edition.status == SENDING:
            edition.status = SENT
            edition.sent_at = now
        registry.set_state(session, edition_id, SEND_FINISHED, now)
        return counts, True


def send_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    *,
    edition_id: int | None,
    now: datetime,
    progress: Progress | None = None,
    runtime: Runtime | None = None,
    resume_send: bool = False,
    resend_uncertain: bool = False,
) -> SendReport:
    """Start (or resume) a send and run one worker in this process to the end."""
    settings.secret_keys()  # no key: fail before the edition is marked as being sent
    if resume_send:
        if edition_id is None:
            raise EditionStateError("--resume needs an edition id")
        report = resume(factory, settings, edition_id, now, resend_uncertain=resend_uncertain)
    else:
        report = begin(factory, edition_id, now, batch_size=workers.batch_size(settings, backend))
    return complete(factory, settings, backend, report, runtime=runtime, progress=progress)


def complete(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    report: SendReport,
    *,
    runtime: Runtime | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """Run one worker on a begun (or resumed) send to the end; fill in the report."""
    runtime = runtime or Runtime(clock=lambda: datetime.now(UTC))
    workers.checkpoint("planned")
    worker = run(factory, settings, backend, report.edition_id, runtime=runtime, progress=progress)
    report.variants = worker.variants
    report.stopped = worker.stopped
    report.counts, report.finished = finish(factory, report.edition_id, runtime.clock())
    return report


def send_test(
    settings: Settings,
    backend: EmailBackend,
    factory: sessionmaker[Session],
    edition_id: int | None,
    addresses: list[str],
    now: datetime,
) -> tuple[Batch, list[RecipientStatus]]:
    """The whole edition to a few addresses; the ledger and the edition's state are untouched."""
    with factory() as session:
        view = edition_view(get_edition(session, edition_id))
    batch = Composer(settings, view, now, settings.secret_keys()).test_batch(addresses)
    with backend:
        return batch, backend.send_batch(batch)
