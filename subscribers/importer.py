"""CSV import: every row validated, every bad row reported with its line, nothing half-imported.

Columns: email (required), name, sections (';'-separated; empty = all), status (active, pending,
unsubscribed; default pending), source and consented_at (the consent evidence for active rows).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.lifecycle import normalise_email
from subscribers.models import ACTIVE, PENDING, UNSUBSCRIBED, Consent, Subscriber

IMPORTABLE = (ACTIVE, PENDING, UNSUBSCRIBED)


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    name: str | None
    sections: tuple[str, ...] | None
    status: str
    source: str | None
    consented_at: datetime | None


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


class ImportError_(Exception):
    """The file has bad rows; nothing was imported. `errors` lists every one of them."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} invalid row(s); nothing imported")


def read_rows(text: str, known_sections: Sequence[str]) -> tuple[list[Row], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        return [], [RowError(1, "header must have an 'email' column")]
    rows: list[Row] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        values = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in raw.items()
            if isinstance(v, str)
        }
        try:
            row = _parse_row(line, values, known_sections)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if row.email in seen:
            errors.append(RowError(line, f"duplicate of line {seen[row.email]}: {row.email}"))
            continue
        seen[row.email] = line
        rows.append(row)
    return rows, errors


def _parse_row(line: int, values: dict[str, str], known: Sequence[str]) -> Row:
    email = normalise_email(values.get("email", ""))
    if not email or email.count("@") != 1 or "." not in email.split("@")[1] or " " in email:
        raise ValueError(f"invalid email address {values.get('email', '')!r}")
    status = values.get("status", "").lower() or PENDING
    if status not in IMPORTABLE:
        raise ValueError(f"unknown status {status!r} (expected one of {', '.join(IMPORTABLE)})")
    sections = tuple(s.strip() for s in values.get("sections", "").split(";") if s.strip())
    unknown = [s for s in sections if s not in known]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(map(repr, unknown))}")
    consented_at = None
    if values.get("consented_at"):
        try:
            consented_at = datetime.fromisoformat(values["consented_at"].replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"consented_at is not ISO-8601: {values['consented_at']!r}") from None
        if consented_at.tzinfo is None:
            consented_at = consented_at.replace(tzinfo=UTC)
    return Row(
        line,
        email,
        values.get("name") or None,
        sections or None,
        status,
        values.get("source") or None,
        consented_at,
    )


def import_rows(
    session: Session, rows: Iterable[Row], *, now: datetime, default_source: str
) -> ImportResult:
    """Upsert rows; re-running the same file changes nothing. The caller owns the transaction."""
    result = ImportResult()
    for row in rows:
        existing = session.scalar(select(Subscriber).where(Subscriber.email == row.email))
        if existing is None:
            session.add(_new_subscriber(row, now, default_source))
            result.added += 1
        elif (existing.name, existing.sections) != (row.name, _list(row.sections)):
            existing.name, existing.sections, existing.updated_at = (
                row.name,
                _list(row.sections),
                now,
            )
            result.updated += 1
        else:
            result.unchanged += 1
    return result


def _list(sections: tuple[str, ...] | None) -> list[str] | None:
    return None if sections is None else list(sections)


def _new_subscriber(row: Row, now: datetime, default_source: str) -> Subscriber:
    when = row.consented_at or now
    sub = Subscriber(
        email=row.email,
        name=row.name,
        status=row.status,
        sections=_list(row.sections),
        created_at=when,
        updated_at=now,
        confirmed_at=when if row.status in (ACTIVE, UNSUBSCRIBED) else None,
        unsubscribed_at=now if row.status == UNSUBSCRIBED else None,
    )
    source = row.source or default_source
    sub.consents.append(
        Consent(
            event="import",
            at=now,
            source=source,
            detail={"status": row.status, "consented_at": when.isoformat()},
        )
    )
    return sub


def import_file(
    session: Session,
    path: Path,
    *,
    known_sections: Sequence[str],
    now: datetime,
    skip_invalid: bool = False,
) -> ImportResult:
    text = path.read_text(encoding="utf-8-sig")
    rows, errors = read_rows(text, known_sections)
    if errors and not skip_invalid:
        raise ImportError_(errors)
    result = import_rows(session, rows, now=now, default_source=f"import of {path.name}")
    result.errors = errors
    return result
