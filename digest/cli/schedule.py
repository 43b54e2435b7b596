"""`digest schedule`, `digest run-due` and `digest status`: the schedule's three faces.

Both ways of running it call one core function, digest.schedule.due.run_due: the long-running
process wakes it at the slots, cron or a systemd timer run it every minute. The schedule's
modules (APScheduler, the send engine) are imported inside the commands, so that other
commands do not pay for them at start-up.
"""

from __future__ import annotations

import json
import logging
import signal
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from digest.cli.common import console, err_console, parse_now, state

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.schedule.due import DueReport, StepResult
    from digest.schedule.slots import Slots

NOW_HELP = (
    "Act as if it were this moment (ISO-8601; without an offset, in the publication's "
    "timezone); the clock then runs on from there. For rehearsals and tests."
)


def register(root: typer.Typer) -> None:
    root.command("schedule")(schedule)
    root.command("run-due")(run_due)
    root.command("status")(status)


def schedule(
    ctx: typer.Context,
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", help=NOW_HELP),
) -> None:
    """Run the schedule until SIGTERM: build each edition ahead of its slot, send it at the
    slot ([schedule] in the config). Logs every run."""
    from digest import logs
    from digest.backends import get_backend
    from digest.schedule.due import OffsetClock
    from digest.schedule.service import Service

    st = state(ctx)
    settings = st.settings
    start = parse_now(now, settings.publication.tz) if now is not None else None
    _slots(settings)  # no [schedule] cron: one line, before anything else
    settings.secret_keys()  # a missing key or backend secret fails now, not at the slot
    get_backend(settings)
    ctx.call_on_close(logs.configure(st.log_format))
    Service(st.sessions, settings, OffsetClock.starting_at(start), config=st.config).run()


def run_due(
    ctx: typer.Context,
    now: str | None = typer.Option(None, "--now", metavar="ISO-8601", help=NOW_HELP),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print nothing when nothing was due (for cron's mail)."
    ),
) -> None:
    """Do whatever the schedule says is due now, then exit: safe every minute from cron or a
    systemd timer. Exit 0 when it did or decided what was due, non-zero when a build or a
    send failed."""
    from digest import logs
    from digest.schedule.due import OffsetClock
    from digest.schedule.due import run_due as core

    st = state(ctx)
    settings = st.settings
    start = parse_now(now, settings.publication.tz) if now is not None else None
    slots = _slots(settings)
    # Text: this command prints each step itself; the log adds only the other problems.
    text = st.log_format == "text"
    level = logging.WARNING if text else logging.INFO
    ctx.call_on_close(logs.configure(st.log_format, level, steps=not text))
    stopping = _stop_on_sigterm(ctx)
    report = core(
        st.sessions,
        settings,
        clock=OffsetClock.starting_at(start),
        stop=lambda: stopping[0],
        config=st.config,
    )
    _print_report(report, slots, quiet)
    raise typer.Exit(report.exit_code)


def _slots(settings: Settings) -> Slots:
    from digest.schedule.slots import slots_of

    return slots_of(settings)


def _print_report(report: DueReport, slots: Slots, quiet: bool) -> None:
    for result in report.news if quiet else report.results:
        line = f"{slots.local(result.slot)} {result.step}: {result.state}: {result.message}"
        line += _told(result)
        if result.state == "failed":
            err_console.print(
                f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True
            )
        else:
            console.print(escape(line), highlight=False, soft_wrap=True)
    if not report.results and not quiet:  # (a step looked at again still prints without -q)
        nxt = f" Next slot: {slots.local(report.next_slot)}." if report.next_slot else ""
        console.print(f"Nothing due at {slots.local(report.now)}.{nxt}", highlight=False)


def _told(result: StepResult) -> str:
    if result.told:
        return f" (staff told: {', '.join(result.told)})"
    if result.note_error:
        return f" (staff NOT told: {result.note_error})"
    return ""


def _stop_on_sigterm(ctx: typer.Context) -> list[bool]:
    """SIGTERM (systemd stopping the timer's service): no new step; a send stops after its
    batch and the next run continues it. The old handler is back when the command ends."""
    flag = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        flag[0] = True

    previous = signal.signal(signal.SIGTERM, handler)
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))
    return flag


def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    now: str | None = typer.Option(
        None, "--now", metavar="ISO-8601", help="Look as if it were this moment (default: now)."
    ),
) -> None:
    """The schedule at a glance: the next slot and what will happen then, the current
    edition, the last send's counts, recent skips and failures."""
    from digest.schedule.status import overview

    st = state(ctx)
    data = overview(st.sessions, st.settings, parse_now(now, st.settings.publication.tz))
    if as_json:
        console.print_json(json.dumps(data))
        return
    for line in _status_lines(data, st.settings.publication.tz):
        console.print(escape(line), highlight=False, soft_wrap=True)


def _status_lines(data: dict[str, Any], tz: Any) -> list[str]:
    def local(iso: str) -> str:
        return f"{datetime.fromisoformat(iso).astimezone(tz):%Y-%m-%d %H:%M %Z}"

    lines = [_schedule_line(data["schedule"])]
    for slot in data["slots"]:
        lines.append(f"Slot {slot['local']}: {slot['will']}.")
    current = data["current_edition"]
    if current is None:
        lines.append("Current edition: none yet (`digest build`, or the schedule, makes one).")
    else:
        reason = f" ({current['status_reason']})" if current["status_reason"] else ""
        lines.append(
            f"Current edition: {current['id']}, {current['status']}{reason}: "
            f'"{current["subject"]}", {current["items"]} articles, week ending '
            f"{local(current['cutoff'])}."
        )
    lines.append(_last_send_line(data["last_send"], local))
    problems = data["recent_problems"]
    lines.append("Recent skips and failures:" if problems else "Recent skips and failures: none.")
    for p in problems:
        edition = f" edition {p['edition']}" if p["edition"] else ""
        lines.append(f"  {local(p['slot'])} {p['step']}{edition}: {p['state']}: {p['outcome']}")
    return lines


def _schedule_line(schedule: dict[str, Any] | None) -> str:
    if schedule is None:
        return "Schedule: none ([schedule] cron is not set)."
    notify = schedule["notify"]
    return (
        f'Schedule: "{schedule["cron"]}" in {schedule["timezone"]}, approval '
        f"{schedule['approval']}, draft built {schedule['build_lead_hours']} h ahead, send "
        f"window {schedule['send_window_hours']} h; notes to "
        + (", ".join(notify) if notify else "nobody ([schedule] notify is empty)")
        + "."
    )


def _last_send_line(last: dict[str, Any] | None, local: Any) -> str:
    if last is None:
        return "Last send: none yet."
    counts = ", ".join(f"{n:,} {state}" for state, n in last["counts"].items()) or "no rows"
    when = f"sent {local(last['sent_at'])}" if last.get("sent_at") else last["status"]
    extra = ""
    if "opens" in last:
        extra = (
            f"; {last['uncertain']:,} uncertain, {last['opens']:,} opens, {last['clicks']:,} clicks"
        )
    return f"Last send: edition {last['edition']}, {when}: {counts}{extra}."
