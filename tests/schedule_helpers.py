"""Shared set-up for the schedule tests: settings with a [schedule], a hand-set clock, the
staff notes as the outbox wrote them, and the edition of a slot as the database holds it."""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.store.models import Delivery, Edition, EditionEvent, ScheduleRun

# The demo's slot: Friday 2026-11-20 09:00 in New York (the demo feeds' week ends there).
SLOT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
CRON = "0 9 * * fri"
STAFF = ["editor@meridianreview.example", "desk@meridianreview.example"]


def with_schedule(settings: Settings, **values: Any) -> Settings:
    """The same settings with a [schedule] (the demo's Friday 09:00 slot, two staff)."""
    base = {"cron": CRON, "notify": STAFF, **values}
    schedule = type(settings.schedule).model_validate({**settings.schedule.model_dump(), **base})
    return settings.model_copy(update={"schedule": schedule})


def with_newsletter(settings: Settings, **values: Any) -> Settings:
    newsletter = type(settings.newsletter).model_validate(
        {**settings.newsletter.model_dump(), **values}
    )
    return settings.model_copy(update={"newsletter": newsletter})


def at(moment: datetime) -> Any:
    """A clock stopped at `moment`."""
    return lambda: moment


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@dataclass
class Note:
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]

    @property
    def flat(self) -> str:
        """The text part with its line wrapping undone, for looking up phrases."""
        return " ".join(self.text.split())


def notes(outbox: Path) -> list[Note]:
    """The staff notes the outbox backend wrote, oldest first, read back from the raw files."""
    found = []
    files = sorted((outbox / "edition-0-tests").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and html is not None
        found.append(
            Note(
                to=str(message["To"]),
                # Python's folder may put a long Subject on its own continuation line.
                subject=str(message["Subject"]).strip(),
                text=text.get_content(),
                html=html.get_content(),
                headers={k: str(v) for k, v in message.items()},
            )
        )
    return found


def subjects(outbox: Path) -> list[str]:
    """Each note's subject once (every note goes to every staff address)."""
    return list(dict.fromkeys(n.subject for n in notes(outbox)))


def edition_at(factory: sessionmaker[Session], slot: datetime) -> Edition | None:
    with factory() as session:
        edition = session.scalar(select(Edition).where(Edition.cutoff == slot))
        if edition is not None:
            _ = edition.items, edition.history
        return edition


def actions(factory: sessionmaker[Session], slot: datetime = SLOT) -> list[tuple[str, str]]:
    """The history of the slot's edition: (action, actor) in order."""
    with factory() as session:
        rows = session.execute(
            select(EditionEvent.action, EditionEvent.actor)
            .join(Edition, Edition.id == EditionEvent.edition_id)
            .where(Edition.cutoff == slot)
            .order_by(EditionEvent.id)
        )
        return [(a, b) for a, b in rows]


def deliveries(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def runs(factory: sessionmaker[Session]) -> dict[tuple[datetime, str], tuple[str, str | None]]:
    with factory() as session:
        return {
            (r.slot, r.step): (r.state, r.outcome) for r in session.scalars(select(ScheduleRun))
        }
