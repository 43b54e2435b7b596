"""Sending an edition: freeze the audience, run workers over the ledger, resume after a crash.

Every (edition, subscriber) gets a Delivery row, in a planned batch, before any provider call
(planning.plan). A worker claims a batch of one variant and commits; marks it submitted and
commits; only then calls the provider; then records the answer (docs/design.md §3). So after a crash
`claimed` rows are safe to send again and `submitted` ones are uncertain until ESP events settle
them (reconcile).

`send_edition` is the one way a send is run (by `digest send`, the tests, a scheduler): in this
process or in `digest worker` processes; `work` is the loop of those processes.

This module never imports sendgrid or smtplib: it talks to an EmailBackend (docs/design.md §4).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends import get_backend
from digest.backends.base import Batch, EmailBackend, RecipientStatus
from digest.config import Settings
from digest.edition import archive, lifecycle
from digest.edition.lifecycle import SYSTEM
from digest.edition.preflight import PreflightReport, preflight_view, variants_of
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import EditionStateError, EmptyAudienceError, UsageError
from digest.ledger import moves, registry, tally
from digest.ledger.reconcile import reconcile
from digest.render.email import EditionView, RenderedEmail
from digest.send import changes
from digest.send import worker as one_worker
from digest.send.compose import Composer
from digest.send.plan import BATCH_SIZE, Audience, freeze, survey
from digest.send.worker import Runtime, Worker, WorkerReport
from digest.store.db import bulk_transaction, transaction
from digest.store.models import (
    ACCEPTED,
    APPROVED,
    FAILED,
    PLANNED,
    SEND_CANCELLED,
    SEND_FINISHED,
    SEND_RUNNING,
    SENDING,
    SENT,
    SKIPPED,
    SUBMITTED,
    Edition,
)
from subscribers.lifecycle import recipients_for

__all__ = [
    "Progress",
    "Runtime",
    "SendReport",
    "begin",
    "dry_run",
    "finish",
    "resume",
    "run",
    "send_edition",
    "send_test",
    "work",
]

# How often `send_edition` looks at the ledger while worker processes run (a process that
# exits ends the wait at once).
POLL_PROCESSES_S = 0.5
# Longest single nap of an idle `digest worker`, so that SIGTERM is noticed quickly.
NAP_S = 0.2


class Progress(Protocol):
    """How far a send is, for whoever shows it (the CLI's bar). `total` comes once, when the
    send knows how many recipients this run is to settle; `done` is how many of them are
    settled so far, counted by this process's worker or, with worker processes, read from
    the ledger."""

    def total(self, count: int) -> None: ...

    def done(self, count: int) -> None: ...


class _Quiet:
    def total(self, count: int) -> None:
        pass

    def done(self, count: int) -> None:
        pass


class _RunningCount:
    """The worker reports each batch as it settles, from both of its threads; Progress wants
    the running count."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, settled: int) -> None:
        with self.lock:
            self.count += settled
            self.progress.done(self.count)


def _never() -> bool:
    return False


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
    # Exit codes of the `digest worker` processes that failed (with --workers N).
    failed_workers: list[int] = field(default_factory=list)
    # Recipients this run set out to settle (the progress bar's total).
    todo: int = 0
    # Seconds spent (wall clock) checking every variant before the start, freezing the
    # audience, and sending (this process, or its worker processes).
    preflight_s: float = 0.0
    plan_s: float = 0.0
    send_s: float = 0.0
    # Each variant as the preflight rendered it (the send's worker uses them, not renders again).
    renders: Rendered | None = field(default=None, repr=False)

    @property
    def left(self) -> int:
        """Recipients not settled yet (planned, claimed, deferred or submitted): what a
        `--resume` goes on with."""
        return sum(self.counts[state] for state in moves.UNFINISHED)


def dry_run(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int | None,
    now: datetime,
    force: lifecycle.Override | None = None,
) -> SendReport:
    """What a real send would do now: refused as it would be (a draft, a sent edition, a closed
    window), else who would get which variant (each rendered to prove it renders). For a send
    under way, who is left. Nothing is written."""
    with factory() as session:
        edition = get_edition(session, edition_id)
        if edition.status == SENDING:
            left = tally.pending_variants(session, edition.id)
            return SendReport(
                edition_id=edition.id,
                planned=sum(left.values()),
                variants=left,
                dry_run=True,
                resumed=True,
            )
        lifecycle.check_sendable(edition, settings, now, force)
        variants: Counter[str] = Counter(
            moves.variant_key(a.sections) for a in recipients_for(session, edition.sections, now)
        )
        view = edition_view(edition)
        version = edition.version
    checked = preflight_view(settings, view, variants_of(view, dict(variants)), now, version)
    checked.require(force, "sending")
    return SendReport(
        edition_id=edition.id, planned=sum(variants.values()), variants=dict(variants), dry_run=True
    )


def begin(
    factory: sessionmaker[Session],
    edition_id: int | None,
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
    settings: Settings | None = None,
    actor: str = SYSTEM,
    force: lifecycle.Override | None = None,
) -> SendReport:
    """Start a send: the edition becomes `sending` and its audience is frozen, atomically, in
    batches of `batch_size` (the workers' size: `worker.batch_size`; a claim for fewer splits
    the rest off, which costs a write per row moved). Only an approved edition, unchanged since
    approval, within its send window (judged when `settings` is given, as `send_edition` always
    does); an empty audience starts nothing and leaves the edition approved."""
    # Every row written refers to the edition or a subscriber read here, under the write lock.
    with bulk_transaction(factory, known_references=True) as session:
        registry.write_first(session)
        edition = get_edition(session, edition_id)
        late = (
            lifecycle.check_sendable(edition, settings, now, force)
            if settings is not None
            else lifecycle.check_approved(edition)
        )
        started = time.perf_counter()
        audience = survey(session, edition.sections, now, batch_size)
        surveyed = time.perf_counter()
        # The emails as they will be sent: with the archive address the send will give them.
        link = archive.expected_url(session, settings, edition, now) if settings else None
        view = edition_view(edition, link)
        renders = Rendered(view, {})
        checked = (
            _preflight(view, edition, audience, settings, now, renders.emails)
            if settings is not None
            else None
        )
        forced = checked.require(force, "sending") if checked is not None else False
        checked_at = time.perf_counter()
        before = edition.status
        _claim_send(session, edition, now)
        planned = freeze(session, edition.id, audience, now)
        if planned.recipients == 0:
            raise EmptyAudienceError(
                f"edition {edition.id} has no recipients: no confirmed subscriber takes any of "
                f"its sections ({', '.join(edition.sections)}); nothing was sent and it stays "
                "approved"
            )
        lifecycle.record(
            session,
            edition,
            "send started",
            actor,
            now,
            from_status=before,
            reason=force.reason if force else None,
            forced=late or forced,
            detail=f"{planned.recipients} recipients"
            + (", after the send window" if late else "")
            + (f"; {checked.note()}" if checked is not None else ""),
        )
        registry.start(
            session, edition.id, planned.recipients, planned.batches, now, changes.mark(session)
        )
        count = planned.recipients
        report = SendReport(edition_id=edition.id, planned=count, todo=count, renders=renders)
    # Seconds measured (not `now`, which a test freezes): the preflight apart from the plan.
    report.preflight_s = checked_at - surveyed
    report.plan_s = time.perf_counter() - started - report.preflight_s
    return report


def _claim_send(session: Session, edition: Edition, now: datetime) -> None:
    """approved -> sending as one conditional UPDATE: of two sends started at once (a
    scheduler and a person, two schedulers on PostgreSQL), the second finds no approved row
    once the first commits, and starts nothing (SQLite: write_first already serialised them)."""
    moved = session.execute(
        update(Edition)
        .where(Edition.id == edition.id, Edition.status == APPROVED)
        .values(status=SENDING, send_started_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise EditionStateError(
            f"edition {edition.id} is already being sent: another send started it a moment ago"
        )
    edition.status = SENDING
    edition.send_started_at = now


@dataclass(frozen=True)
class Rendered:
    """Each variant's email (key: its sections joined by "|"), rendered from `view`."""

    view: EditionView
    emails: dict[str, RenderedEmail]


def _preflight(
    view: EditionView,
    edition: Edition,
    audience: Audience,
    settings: Settings,
    now: datetime,
    renders: dict[str, RenderedEmail],
) -> PreflightReport:
    """Every variant this send will render, checked before anything is frozen."""
    counts = dict(sorted(audience.counts.items()))
    wanted = variants_of(view, counts)
    return preflight_view(settings, view, wanted, now, edition.version, renders)


def resume(
    factory: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    now: datetime,
    *,
    resend_uncertain: bool = False,
    actor: str | None = None,
) -> SendReport:
    """Pick a send up after a crash (or a cancel): crashed workers' claimed rows go back to
    planned; their submitted rows are settled from ESP events; what stays uncertain is listed,
    and sent again only when `resend_uncertain` says so. With `actor` (a staff member), the
    resume is kept in the edition's history."""
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
        if actor is not None:
            lifecycle.record(
                session,
                edition,
                "send resumed",
                actor,
                now,
                detail=f"{report.todo} to go"
                + (f", {report.resent} uncertain sent again" if report.resent else ""),
            )
    return report


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend,
    edition_id: int,
    *,
    runtime: Runtime | None = None,
    progress: Callable[[int], None] | None = None,
    renders: Rendered | None = None,
) -> WorkerReport:
    """One worker on this send until nothing is left to claim (or cancel / warm-up cap).
    `renders`: variants rendered already (by the preflight of `begin`)."""
    runtime = runtime or Runtime()
    now = runtime.clock()
    with factory() as session:
        edition = get_edition(session, edition_id)
        if edition.status != SENDING:
            raise EditionStateError(f"edition {edition.id} is {edition.status}, not being sent")
        view = edition_view(edition, archive.archive_url(session, settings, edition))
    ready = dict(renders.emails) if renders is not None and renders.view == view else {}
    composer = Composer(settings, view, now, settings.secret_keys(), ready)
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
        # Several workers may finish at once: the one whose UPDATE moves the row records it.
        moved = session.execute(
            update(Edition)
            .where(Edition.id == edition_id, Edition.status == SENDING)
            .values(status=SENT, sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            edition = get_edition(session, edition_id)
            session.refresh(edition)
            lifecycle.record(
                session, edition, "sent", SYSTEM, now, from_status=SENDING, detail=_summary(counts)
            )
        registry.set_state(session, edition_id, SEND_FINISHED, now)
        return counts, True


def send_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend | None = None,
    *,
    edition_id: int | None = None,
    now: datetime,
    resume_send: bool = False,
    resend_uncertain: bool = False,
    workers: int | None = None,
    config: str | None = None,
    progress: Progress | None = None,
    runtime: Runtime | None = None,
    actor: str = SYSTEM,
    force: lifecycle.Override | None = None,
) -> SendReport:
    """`digest send`: start (or resume) a send, deliver it, and mark it sent once nothing is
    left. With one worker (`workers`, default [delivery] workers) it runs in this process; with
    more, that many `digest worker` processes share it (PostgreSQL only; `config` is the
    --config they are given) and this process follows the ledger until they exit. Everything
    that can be refused is refused before the edition is marked as being sent."""
    count = workers or settings.delivery.workers
    settings.secret_keys()  # no key: fail before the edition is marked as being sent
    _refuse_many_workers_on_sqlite(factory, count)
    if backend is None:
        backend = get_backend(settings)  # a missing API key fails here, not in every worker
    if resume_send:
        if edition_id is None:
            raise EditionStateError("--resume needs an edition id")
        report = resume(factory, settings, edition_id, now, resend_uncertain=resend_uncertain)
    else:
        report = begin(
            factory,
            edition_id,
            now,
            batch_size=one_worker.batch_size(settings, backend),
            settings=settings,
            actor=actor,
            force=force,
        )
    progress = progress or _Quiet()
    progress.total(report.todo)
    runtime = runtime or Runtime()
    started = time.perf_counter()
    if count == 1:
        one_worker.checkpoint("planned")
        advance = _RunningCount(progress)
        worker = run(
            factory,
            settings,
            backend,
            report.edition_id,
            runtime=runtime,
            progress=advance,
            renders=report.renders,
        )
        report.variants = worker.variants
        report.stopped = worker.stopped
    else:
        report.failed_workers = _run_processes(factory, report.edition_id, count, config, progress)
    report.counts, report.finished = finish(factory, report.edition_id, runtime.clock())
    report.send_s = time.perf_counter() - started
    return report


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n)


def _refuse_many_workers_on_sqlite(factory: sessionmaker[Session], count: int) -> None:
    """SQLite has one writer and no SKIP LOCKED: a second worker would only wait on the lock."""
    if count == 1:
        return
    with factory() as session:
        dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        raise UsageError(
            f"--workers {count} needs PostgreSQL: SQLite runs one worker per send "
            "(set [database] url to a postgresql+psycopg:// URL, or use --workers 1)"
        )


def worker_command(edition_id: int, config: str | None) -> list[str]:
    """How `send_edition` starts a helper: the same interpreter, the same configuration."""
    root = [sys.executable, "-m", "digest"] + (["--config", config] if config else [])
    return [*root, "worker", "--edition", str(edition_id), "--until-done"]


def _run_processes(
    factory: sessionmaker[Session],
    edition_id: int,
    count: int,
    config: str | None,
    progress: Progress,
) -> list[int]:
    """`count` worker processes on a begun send; the ledger tells how far they are (they
    print their own lines). The exit codes of those that failed."""
    with factory() as session:
        before = _settled(tally.counts(session, edition_id))
    procs = [subprocess.Popen(worker_command(edition_id, config)) for _ in range(count)]
    while True:
        with factory() as session:
            progress.done(_settled(tally.counts(session, edition_id)) - before)
        running = [p for p in procs if p.poll() is None]
        if not running:
            return [p.returncode for p in procs if p.returncode]
        with contextlib.suppress(subprocess.TimeoutExpired):
            running[0].wait(timeout=POLL_PROCESSES_S)  # back at once when it exits


def _settled(counts: Counter[str]) -> int:
    return counts[ACCEPTED] + counts[FAILED] + counts[SKIPPED]


def work(
    factory: sessionmaker[Session],
    settings: Settings,
    backend: EmailBackend | None = None,
    *,
    edition_id: int | None = None,
    until_done: bool = False,
    poll_s: float = 5.0,
    stop: Callable[[], bool] = _never,
    runtime: Runtime | None = None,
    on_run: Callable[[int, WorkerReport], None] | None = None,
    on_idle: Callable[[], None] | None = None,
) -> None:
    """`digest worker`: help with every running send (or only `edition_id`'s) until `stop()`
    is true, which is asked before every batch and while waiting; with `until_done`, one pass
    over the running sends. After each send it worked on it tries `finish`, so whichever
    worker runs out of work last marks the edition sent. `on_run` hears of each send worked
    on; `on_idle` once, when the worker first waits for new sends."""
    runtime = replace(runtime or Runtime(), should_stop=stop)
    if backend is None:
        backend = get_backend(settings)
    waiting = False
    while not stop():
        with factory() as session:
            editions = registry.running_editions(session, edition_id)
        for eid in editions:
            if stop():
                return
            report = run(factory, settings, backend, eid, runtime=runtime)
            if on_run is not None:
                on_run(eid, report)
            finish(factory, eid, runtime.clock())
        if until_done:
            return
        if not waiting and on_idle is not None:
            on_idle()
        waiting = True
        _nap(runtime, poll_s, stop)


def _nap(runtime: Runtime, seconds: float, stop: Callable[[], bool]) -> None:
    """Wait in short naps, so that a stop request (SIGTERM) is noticed within one."""
    left = seconds
    while left > 0 and not stop():
        step = min(left, NAP_S)
        runtime.sleep(step)
        left -= step


def send_test(
    settings: Settings,
    backend: EmailBackend,
    factory: sessionmaker[Session],
    edition_id: int | None,
    addresses: list[str],
    now: datetime,
    actor: str | None = None,
) -> tuple[Batch, Sequence[RecipientStatus]]:
    """The whole edition to a few addresses; the ledger and the edition's state are untouched.
    With `actor` (a staff member in the console or the API), the test is kept in the edition's
    history: who sent it, to whom, and what the provider said."""
    with factory() as session:
        view = edition_view(get_edition(session, edition_id))
    batch = Composer(settings, view, now, settings.secret_keys()).test_batch(addresses)
    with backend:
        statuses = backend.send_batch(batch)
    if actor is not None:
        with transaction(factory) as session:
            edition = get_edition(session, view.id)
            outcome: Counter[str] = Counter(str(s.status) for s in statuses)
            lifecycle.record(
                session,
                edition,
                "test sent",
                actor,
                now,
                detail=f"to {', '.join(addresses)}: {_summary(outcome)}",
            )
    return batch, statuses
