"""`digest worker`: a process that helps with sends (PostgreSQL: as many as you like)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

import typer

from digest.cli.common import console, state

if TYPE_CHECKING:  # the send engine is imported by the command, not by `--help`
    from digest.send.worker import WorkerReport


def register(root: typer.Typer) -> None:
    root.command("worker")(worker)


def worker(
    ctx: typer.Context,
    edition_id: int | None = typer.Option(
        None, "--edition", metavar="ID", help="Work on this send only (default: every send)."
    ),
    until_done: bool = typer.Option(
        False, "--until-done", help="Exit when no send has work left (default: keep polling)."
    ),
    poll: float = typer.Option(
        5.0, "--poll", min=0.1, metavar="SECONDS", help="Wait between looks for new sends."
    ),
) -> None:
    """Claim and send batches of editions being sent, until stopped (SIGTERM/Ctrl-C finish the
    batch in hand first)."""
    from digest.send import engine as sending

    st = state(ctx)
    stopping = _stop_flag()
    sending.work(
        st.sessions,
        st.settings,
        edition_id=edition_id,
        until_done=until_done,
        poll_s=poll,
        stop=lambda: stopping[0],
        on_run=_print_run,
        on_idle=lambda: console.print(
            f"Waiting for sends (every {poll:g} s; SIGTERM or Ctrl-C stops).", highlight=False
        ),
    )


def _print_run(edition_id: int, report: WorkerReport) -> None:
    done = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
    console.print(f"edition {edition_id}: {done or 'nothing to do'}", highlight=False)


def _stop_flag() -> list[bool]:
    flag = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return flag
