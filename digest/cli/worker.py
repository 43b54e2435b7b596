"""`digest worker`: a process that helps with sends (PostgreSQL: as many as you like)."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from types import FrameType

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends import get_backend
from digest.cli.common import console, state
from digest.send import engine as sending
from digest.send.worker import Runtime
from digest.store.models import SEND_RUNNING, SENDING, Edition, EditionSend


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
    st = state(ctx)
    backend = get_backend(st.settings)
    stopping = _stop_flag()
    runtime = Runtime(clock=lambda: datetime.now(UTC), should_stop=lambda: stopping[0])
    while not stopping[0]:
        editions = _sending(st.sessions, edition_id)
        for eid in editions:
            report = sending.run(st.sessions, st.settings, backend, eid, runtime=runtime)
            done = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
            console.print(f"edition {eid}: {done or 'nothing to do'}", highlight=False)
            sending.finish(st.sessions, eid, datetime.now(UTC))
        if until_done:
            return
        time.sleep(poll)


def _sending(sessions: sessionmaker[Session], edition_id: int | None) -> list[int]:
    """Editions being sent whose send is running (not cancelled, not finished)."""
    with sessions() as session:
        query = (
            select(Edition.id)
            .join(EditionSend, EditionSend.edition_id == Edition.id)
            .where(Edition.status == SENDING, EditionSend.state == SEND_RUNNING)
            .order_by(Edition.id)
        )
        if edition_id is not None:
            query = query.where(Edition.id == edition_id)
        return list(session.scalars(query))


def _stop_flag() -> list[bool]:
    flag = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return flag
