"""Preflight, as the scheduler reads it: passed or not, what failed, what to look at.

Approval and sending run issue 12's preflight themselves (digest.edition.preflight) and refuse
a failed one with PreflightError, so the schedule is gated exactly as staff are; it only runs
one of its own for the note that goes with a new draft, and reads the report a refusal carries
for the note that goes with a skip. The notes need three things of a report: `ok`, `failures`
and `warnings`; `Preflight` holds those, so the notes do not depend on the report's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.preflight import PreflightReport, preflight_edition
from digest.errors import PreflightError


@dataclass
class Preflight:
    ok: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def preflight(
    factory: sessionmaker[Session], settings: Settings, edition_id: int, now: datetime
) -> Preflight:
    """The full edition and every variant that has subscribers at `now`."""
    return _read(preflight_edition(factory, settings, edition_id, now))


def refused(error: PreflightError) -> tuple[str, Preflight | None]:
    """Why approval or a send was refused, in a line, and the report that refused it."""
    report = error.report
    if not isinstance(report, PreflightReport):
        return f"preflight failed: {error}", None
    return f"preflight failed: {'; '.join(report.failures)}", _read(report)


def _read(report: PreflightReport) -> Preflight:
    return Preflight(report.ok, list(report.failures), list(report.warnings))
