"""`digest send` and its subcommands: status, cancel, report."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from digest.cli.common import (
    AS_OPTION,
    State,
    actor,
    console,
    err_console,
    output_file_option,
    parse_now,
    state,
)
from digest.cli.safe import shown
from digest.errors import UsageError
from digest.human import plural

# The send engine, the backends and rich's progress bar are imported by the commands that use
# them: `digest send --help` needs none of them.
if TYPE_CHECKING:
    from rich.progress import Progress

    from digest.send.engine import SendReport

app = typer.Typer(help="Send an edition, and watch, cancel or report on a send.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="send")


@app.callback(invoke_without_command=True)
def send(
    ctx: typer.Context,
    edition_id: int | None = typer.Option(
        None, "--edition", metavar="ID", help="Edition to send (default: the newest)."
    ),
    dry: bool = typer.Option(
        False, "--dry-run", help="Show who would get which variant; send and record nothing."
    ),
    resume: int | None = typer.Option(
        None,
        "--resume",
        metavar="EDITION",
        help="Continue a send after a crash or a cancel; settles uncertain rows from events.",
    ),
    resend_uncertain: bool = typer.Option(
        False,
        "--resend-uncertain",
        help="With --resume: send again to recipients no event confirmed (risks a duplicate).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Worker processes (more than 1 needs PostgreSQL)."
    ),
    test_to: str | None = typer.Option(
        None,
        "--test-to",
        metavar="A@X,B@Y",
        help="Send a test copy to these addresses only; the ledger is not touched.",
    ),
    now: str | None = typer.Option(
        None,
        "--now",
        metavar="ISO-8601",
        help="Judge the send window at this moment (default: now; without an offset, in the "
        "publication's timezone).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Send after the send window closed; needs --reason."
    ),
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Why --force (kept in the edition's history)."
    ),
    who: str | None = AS_OPTION,
) -> None:
    """Deliver an approved edition to every confirmed subscriber of its sections, exactly once
    each. Only within its send window: from its cut-off until [newsletter] send_window_hours
    after it."""
    if ctx.invoked_subcommand is not None:
        return
    from digest.edition.lifecycle import override
    from digest.send import engine as sending

    st = state(ctx)
    moment = parse_now(now, st.settings.publication.tz)
    if resend_uncertain and resume is None:
        raise UsageError("--resend-uncertain only goes with --resume EDITION")
    if test_to is not None:
        _test_send(st, edition_id, test_to, moment)
        return
    gate = override(force, reason)
    if dry:
        _print(sending.dry_run(st.sessions, st.settings, edition_id, moment, gate))
        return
    from digest.send.runtime import Runtime

    chosen = resume if resume is not None else edition_id
    with _Bar() as bar, _CtrlC(chosen) as interrupt:
        report = sending.send_edition(
            st.sessions,
            st.settings,
            edition_id=chosen,
            now=moment,
            resume_send=resume is not None,
            resend_uncertain=resend_uncertain,
            workers=workers,
            config=st.config,
            progress=bar,
            runtime=Runtime(should_stop=interrupt.requested),
            actor=actor(who),
            force=gate,
        )
    if report.failed_workers:
        codes = report.failed_workers
        err_console.print(f"{len(codes)} worker(s) failed (exit codes {codes})")
    if interrupt.requested() and not report.finished:
        _print_interrupted(report)
        raise typer.Exit(130)
    _print(report)
    if report.counts.get("failed"):
        raise typer.Exit(1)


class _CtrlC:
    """Ctrl-C during a send stops it after the batch in hand (every batch sent is recorded, so
    `--resume` goes on where it stopped, nobody twice); a second Ctrl-C stops at once, which
    the ledger survives too (a crash is what --resume is for)."""

    def __init__(self, edition_id: int | None) -> None:
        self.edition = "EDITION" if edition_id is None else str(edition_id)
        self.count = 0
        self.previous: Any = None

    def requested(self) -> bool:
        return self.count > 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        err_console.print(
            "\nStopping after the batch in hand (Ctrl-C again to stop at once)...",
            highlight=False,
        )

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self.previous is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self.previous)
        if kind is KeyboardInterrupt:
            e = self.edition
            err_console.print(
                f"Stopped at once: `digest send status {e}` shows what went out; "
                f"`digest send --resume {e}` sends the rest (nobody gets it twice).",
                highlight=False,
                soft_wrap=True,
            )


def _print_interrupted(report: SendReport) -> None:
    """What a person needs after Ctrl-C: what went out, what is left, the command that goes on."""
    e = report.edition_id
    counts = report.counts
    done = counts["accepted"] + counts["failed"] + counts["skipped"]
    detail = ", ".join(f"{counts[s]:,} {s}" for s in ("accepted", "failed", "skipped") if counts[s])
    err_console.print(
        f"Interrupted: edition {e}: {done:,} of {plural(report.planned, 'recipient')} done "
        f"({detail or 'none sent'}), {report.left:,} left. `digest send --resume {e}` sends the "
        "rest; nobody gets it twice.",
        highlight=False,
        soft_wrap=True,
    )


class _Bar:
    """The send's progress as a bar, shown from the moment the send knows its size (so not
    while the audience is being planned) and gone when it ends."""

    def __init__(self) -> None:
        self.bar = _progress()
        self.task: int | None = None

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.bar.stop()

    def total(self, count: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("send", total=count)

    def done(self, count: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=count)  # type: ignore[arg-type]


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.speed
            return Text(f"{speed:,.0f}/s" if speed else "—/s", style="progress.data.speed")

    return Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _test_send(st: State, edition_id: int | None, test_to: str, moment: datetime) -> None:
    from digest.backends import get_backend
    from digest.send import engine as sending

    addresses = _addresses(test_to)
    backend = get_backend(st.settings)
    batch, statuses = sending.send_test(
        st.settings, backend, st.sessions, edition_id, addresses, moment
    )
    by_id = {r.delivery_id: r.email for r in batch.recipients}
    for s in sorted(statuses, key=lambda s: s.delivery_id):
        line = f"{by_id[s.delivery_id]}: {s.status}" + (f" ({s.reason})" if s.reason else "")
        line = shown(line)  # an address and a provider's message: digest/cli/safe.py
        console.print(line, highlight=False)
    console.print(f"Test of edition {batch.edition_id} sent; the ledger was not touched.")
    if any(s.status != "accepted" for s in statuses):
        raise typer.Exit(1)


def _addresses(value: str) -> list[str]:
    from email_validator import EmailNotValidError, validate_email

    addresses = [a.strip() for a in value.split(",") if a.strip()]
    if not addresses:
        raise UsageError("--test-to needs at least one address, e.g. --test-to you@example.com")
    for address in addresses:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            raise UsageError(f"--test-to: {address!r} is not an email address: {exc}") from None
    if len(addresses) > 50:
        raise UsageError("--test-to takes at most 50 addresses (it is a test, not a send)")
    return addresses


def _print(report: SendReport) -> None:
    table = Table(title=f"Edition {report.edition_id}" + (" (dry run)" if report.dry_run else ""))
    table.add_column("Variant (sections)")
    table.add_column("Recipients", justify="right")
    for variant, count in sorted(report.variants.items()):
        table.add_row(variant.replace("|", ", "), f"{count:,}")
    if report.variants:
        console.print(table)
    if report.dry_run:
        left = "are left to get" if report.resumed else "would get"
        console.print(f"{report.planned:,} recipients {left} this edition; nothing was sent.")
        return
    if report.resumed:
        console.print(
            f"Resumed: {report.released:,} claimed rows of crashed workers to send again, "
            f"{report.reconciled:,} uncertain rows settled from events, {report.resent:,} "
            "uncertain rows to send again."
        )
    summary = ", ".join(f"{n:,} {s}" for s, n in sorted(report.counts.items()))
    console.print(f"{report.planned:,} recipients planned: {summary or 'nothing to send'}.")
    console.print(_timing(report), highlight=False)
    _explain(report)


def _timing(report: SendReport) -> str:
    """How long each part took, and the rate of the sending part."""
    parts = [] if report.resumed else [f"preflight {report.preflight_s:.1f} s"]
    parts += [] if report.resumed else [f"plan {report.plan_s:.1f} s"]
    rate = report.todo / report.send_s if report.send_s > 0 else 0.0
    parts.append(f"sending {report.send_s:.1f} s ({rate:,.0f} recipients/s)")
    total = report.preflight_s + report.plan_s + report.send_s
    return f"Took {total:.1f} s: {', '.join(parts)}."


def _explain(report: SendReport) -> None:
    e = report.edition_id
    if report.uncertain:
        shown = ", ".join(str(i) for i in report.uncertain[:20])
        rest = len(report.uncertain) - 20
        more = f" and {rest:,} more" if rest > 0 else ""
        console.print(
            f"{len(report.uncertain):,} recipients are uncertain (handed to the provider, no "
            f"event confirms it: deliveries {shown}{more}; `digest send report {e} --failed` "
            f"lists them). Run `digest send --resume {e}` again once events arrive, or "
            f"`digest send --resume {e} --resend-uncertain`."
        )
    if report.stopped == "cancelled":
        console.print(f"The send was cancelled; `digest send --resume {e}` continues it.")
    elif report.stopped == "warm-up":
        console.print(
            f"Today's warm-up cap is reached; `digest send --resume {e}` continues tomorrow."
        )
    elif not report.finished and not report.uncertain:
        console.print(f"The send is not finished; see `digest send status {e}`.")


@app.command("status")
def status_command(
    ctx: typer.Context, edition: int = typer.Argument(..., metavar="EDITION")
) -> None:
    """Counts per state, rate and ETA of a send."""
    from digest.send.status import status

    st = state(ctx)
    with st.sessions() as session:
        s = status(session, edition, datetime.now(UTC), st.settings.delivery.worker_timeout)
    console.print(f"Edition {s.edition_id}: {s.edition_status} (send {s.state})", highlight=False)
    table = Table()
    table.add_column("State")
    table.add_column("Recipients", justify="right")
    for name in ("planned", "claimed", "submitted", "deferred", "accepted", "failed", "skipped"):
        table.add_row(name, f"{s.counts[name]:,}")
    console.print(table)
    eta = f"{s.eta_s:,.0f} s" if s.eta_s is not None else "—"
    console.print(
        f"{s.planned:,} planned at start; {s.remaining:,} to go; rate {s.rate:,.1f}/s "
        f"(last minute); ETA {eta}; live workers: {len(s.live_workers)}; "
        f"uncertain: {s.uncertain:,}",
        highlight=False,
    )
    console.print(
        f"Opens {s.opens:,} (+{s.machine_opens:,} machine opens), clicks {s.clicks:,}.",
        highlight=False,
    )
    for url, clicks in s.top_links:
        console.print(f"  {clicks:>6,}  {shown(url)}", highlight=False)


@app.command("cancel")
def cancel_command(
    ctx: typer.Context, edition: int = typer.Argument(..., metavar="EDITION")
) -> None:
    """Stop claiming batches; those already claimed finish. `--resume` continues later."""
    from digest.send.status import cancel
    from digest.store.db import transaction

    st = state(ctx)
    with transaction(st.sessions) as session:
        left = cancel(session, edition, datetime.now(UTC))
    console.print(
        f"Edition {edition}: cancelled; {left:,} recipients will not be sent "
        f"(`digest send --resume {edition}` continues)."
    )


@app.command("report")
def report_command(
    ctx: typer.Context,
    edition: int = typer.Argument(..., metavar="EDITION"),
    failed: bool = typer.Option(
        False, "--failed", help="Only who did not get the edition, and why."
    ),
    out: Path | None = output_file_option(
        "--out", metavar="FILE.csv", help="Write the CSV to this file (default: standard output)."
    ),
) -> None:
    """CSV of a send: one row per recipient (with --failed, those not delivered)."""
    from digest.outputs import open_file
    from digest.send.status import report_rows, write_report

    st = state(ctx)
    with st.sessions() as session:
        rows = report_rows(session, edition, failed_only=failed)
        if out is None:
            n = write_report(sys.stdout, rows)
        else:
            with open_file(out, "--out") as fh:
                n = write_report(fh, rows)
            err_console.print(f"{plural(n, 'row')} written to {shown(out)}", highlight=False)
