"""CSV import: every row validated, every bad row reported with its line, nothing half-imported.

Columns: email (required), name, sections (';'-separated; empty = all), status (active,
pending, unsubscribed; empty = pending), source and consented_at (the consent evidence an
active row needs). The export's extra columns are accepted and ignored, so an export imports.

Rules: a file with any bad row imports nothing (unless the caller skips bad rows); an address on
the suppression list is never added back; re-running a file changes nothing; an existing
subscriber's own choices (sections, status) are never overwritten, except that an opt-out in
the file is honoured and a pending subscriber with evidence in the file becomes active.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from subscribers.addresses import validate_email
from subscribers.consent import IMPORT, Evidence, record
from subscribers.errors import InvalidEmail, SubscriberError
from subscribers.fastsql import insert_rows
from subscribers.models import (
    ACTIVE,
    PENDING,
    UNSUBSCRIBED,
    Base,
    Consent,
    Subscriber,
    Suppression,
    new_public_id,
)
from subscribers.suppression import email_hash, email_hashes, suppress_with_evidence

IMPORTABLE = (ACTIVE, PENDING, UNSUBSCRIBED)
COLUMNS = ("email", "name", "sections", "status", "source", "consented_at")
# Columns an export writes that an import reads past.
IGNORED = ("public_id", "created_at", "confirmed_at", "unsubscribed_at", "paused_until")
MAX_NAME = 200
MAX_SOURCE = 500
CHUNK = 1000
csv.field_size_limit(1 << 20)


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


@dataclass(frozen=True)
class Options:
    """How to read a file. `confirmed` (with `source`, the evidence) makes every row that is not
    an opt-out active: the operator vouches that these people opted in."""

    known_sections: tuple[str, ...]
    now: datetime
    confirmed: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        if self.confirmed and not (self.source or "").strip():
            raise SubscriberError("--confirmed needs --source TEXT: where these people opted in")


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: list[int] = field(default_factory=list)  # line numbers, not re-added
    errors: list[RowError] = field(default_factory=list)


class InvalidFile(SubscriberError):
    """The file has bad rows; nothing was imported. `errors` lists every one of them."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} invalid row(s); nothing imported")


def read_text(path: Path) -> str:
    """The file as text; a file that is not UTF-8 is one clear error naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidFile(
            [RowError(line, f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8")]
        ) from None


def read_rows(text: str, options: Options) -> tuple[list[Row], list[RowError]]:
    """Every row parsed and checked; the valid ones and one error per bad one."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [RowError(1, "the file is empty (expected a header with an 'email' column)")]
    except csv.Error as exc:
        return [], [RowError(1, f"malformed CSV: {exc}")]
    header_error = _check_header(header)
    if header_error:
        return [], [RowError(1, header_error)]
    rows: list[Row] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, f"malformed CSV: {exc}"))
            break  # the reader cannot resynchronise after a broken quote
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        try:
            row = _parse_row(start, header, fields, options)
        except (ValueError, SubscriberError) as exc:
            errors.append(RowError(start, str(exc)))
            continue
        if row.email in seen:
            errors.append(RowError(start, f"duplicate of line {seen[row.email]}: {row.email}"))
            continue
        seen[row.email] = start
        rows.append(row)
    return rows, errors


def _check_header(header: list[str]) -> str | None:
    if "email" not in header:
        return "the header has no 'email' column (columns: " + ", ".join(COLUMNS) + ")"
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        return f"column(s) named twice: {', '.join(duplicates)}"
    unknown = [h for h in header if h not in COLUMNS and h not in IGNORED]
    if unknown:
        return (
            f"unknown column(s) {', '.join(map(repr, unknown))} "
            f"(expected some of: {', '.join(COLUMNS)})"
        )
    return None


def _parse_row(line: int, header: list[str], fields: list[str], options: Options) -> Row:
    if len(fields) > len(header):
        raise ValueError(f"{len(fields)} fields but the header has {len(header)} columns")
    values = {h: f.strip() for h, f in zip(header, fields, strict=False)}
    try:
        email = validate_email(values.get("email", ""))
    except InvalidEmail as exc:
        raise ValueError(f"invalid email address {values.get('email', '')!r}: {exc}") from None
    status = _status(values, options)
    sections = tuple(dict.fromkeys(s.strip() for s in values.get("sections", "").split(";")))
    sections = tuple(s for s in sections if s)
    unknown = [s for s in sections if s not in options.known_sections]
    if unknown:
        raise ValueError(
            f"unknown section(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(options.known_sections)})"
        )
    consented_at = _consented_at(values.get("consented_at", ""), options.now)
    source = values.get("source") or None
    if status == ACTIVE and not options.confirmed and not (source and consented_at):
        raise ValueError(
            "status 'active' needs consent evidence: fill in source and consented_at, "
            "or import with --confirmed --source TEXT"
        )
    name = values.get("name") or None
    if name and len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")
    if source and len(source) > MAX_SOURCE:
        raise ValueError(f"source is longer than {MAX_SOURCE} characters")
    return Row(line, email, name, sections or None, status, source, consented_at)


def _status(values: dict[str, str], options: Options) -> str:
    status = values.get("status", "").lower() or PENDING
    if status not in IMPORTABLE:
        raise ValueError(f"unknown status {status!r} (expected one of {', '.join(IMPORTABLE)})")
    if options.confirmed and status != UNSUBSCRIBED:
        return ACTIVE
    return status


def _consented_at(text: str, now: datetime) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"consented_at is not an ISO-8601 date-time: {text!r} (e.g. 2026-02-11T14:32:08Z)"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now:
        raise ValueError(f"consented_at {text!r} is in the future")
    return when


def import_rows(
    session: Session, rows: Sequence[Row], *, options: Options, keys: Sequence[str], label: str
) -> ImportResult:
    """Apply valid rows in chunks (a few queries per thousand rows, not per row). The caller
    owns the transaction, so a failure anywhere leaves nothing behind."""
    result = ImportResult()
    for start in range(0, len(rows), CHUNK):
        _import_chunk(session, rows[start : start + CHUNK], options, keys, label, result)
    return result


def _import_chunk(
    session: Session,
    rows: Sequence[Row],
    options: Options,
    keys: Sequence[str],
    label: str,
    result: ImportResult,
) -> None:
    hashes = {row.email: email_hashes(row.email, keys) for row in rows}
    blocked = set(
        session.scalars(
            select(Suppression.email_hash).where(
                Suppression.email_hash.in_([h for hs in hashes.values() for h in hs])
            )
        )
    )
    # Plain tuples, not ORM objects: on a re-run every row exists, and most need nothing.
    existing = {
        email: (sid, status, name)
        for email, sid, status, name in session.execute(
            select(Subscriber.email, Subscriber.id, Subscriber.status, Subscriber.name).where(
                Subscriber.email.in_([row.email for row in rows])
            )
        )
    }
    fresh: list[Row] = []
    changes: dict[int, Row] = {}
    for row in rows:
        is_blocked = bool(blocked.intersection(hashes[row.email]))
        if row.email in existing:
            sid, status, name = existing[row.email]
            verdict = _verdict(row, status, name, is_blocked)
            if verdict == "update":
                changes[sid] = row
            elif verdict == "suppressed":
                result.suppressed.append(row.line)
            else:
                result.unchanged += 1
        elif not is_blocked:
            fresh.append(row)
        elif row.status == UNSUBSCRIBED:
            result.unchanged += 1  # already on the list: nothing to add
        else:
            result.suppressed.append(row.line)
    if changes:
        for sub in session.scalars(select(Subscriber).where(Subscriber.id.in_(list(changes)))):
            _update(session, sub, changes[sub.id], options, keys, label)
        result.updated += len(changes)
    _insert(session, fresh, options, keys, label)
    result.added += len(fresh)


def _verdict(row: Row, status: str, name: str | None, is_blocked: bool) -> str:
    """What the file may do to an existing subscriber: "suppressed" (they left, bounced,
    complained or were erased: they stay out), "update", or "unchanged"."""
    wants_in = row.status != UNSUBSCRIBED
    if wants_in and (is_blocked or status not in (ACTIVE, PENDING)):
        return "suppressed"
    opts_out = not wants_in and status in (ACTIVE, PENDING)
    confirms = row.status == ACTIVE and status == PENDING
    names = bool(row.name) and not name
    return "update" if opts_out or confirms or names else "unchanged"


def _evidence(row: Row, options: Options, label: str) -> tuple[str, dict[str, Any]]:
    detail: dict[str, Any] = {"status": row.status, "file": label, "line": row.line}
    if row.consented_at:
        detail["consented_at"] = row.consented_at.isoformat()
    if options.confirmed:
        detail["row_source"] = row.source
        return str(options.source), detail
    return row.source or f"import of {label}", detail


def _insert(
    session: Session, rows: Sequence[Row], options: Options, keys: Sequence[str], label: str
) -> None:
    """One executemany per table per chunk (subscribers/fastsql.py): the ORM's per-row
    bookkeeping would cost more than the database does."""
    if not rows:
        return
    now = options.now
    insert_rows(
        session.connection(), _table(Subscriber), [_subscriber_values(row, now) for row in rows]
    )
    ids = {
        email: sid
        for email, sid in session.execute(
            select(Subscriber.email, Subscriber.id).where(
                Subscriber.email.in_([row.email for row in rows])
            )
        )
    }
    consents = []
    for row in rows:
        source, detail = _evidence(row, options, label)
        consents.append(
            {
                "subscriber_id": ids[row.email],
                "event": IMPORT,
                "at": now,
                "source": source,
                "ip": None,
                "user_agent": None,
                "consent_text_version": None,
                "detail": detail,
            }
        )
    insert_rows(session.connection(), _table(Consent), consents)
    # An opt-out in the file goes on the suppression list too, so no later file re-adds it.
    opted_out = [
        {
            "email_hash": email_hash(row.email, keys[0]),
            "reason": "unsubscribed",
            "created_at": now,
            "note": None,
        }
        for row in rows
        if row.status == UNSUBSCRIBED
    ]
    if opted_out:
        insert_rows(session.connection(), _table(Suppression), opted_out)


def _table(model: type[Base]) -> Table:
    """The model's Core table: inserting into it skips the ORM's bulk bookkeeping."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _subscriber_values(row: Row, now: datetime) -> dict[str, Any]:
    when = row.consented_at or now
    return {
        "public_id": new_public_id(),
        "email": row.email,
        "name": row.name,
        "status": row.status,
        "sections": _list(row.sections),
        "created_at": when,
        "updated_at": now,
        "confirmed_at": when if row.status in (ACTIVE, UNSUBSCRIBED) else None,
        "unsubscribed_at": now if row.status == UNSUBSCRIBED else None,
        "requested_at": now if row.status == PENDING else None,
    }


def _update(
    session: Session,
    sub: Subscriber,
    row: Row,
    options: Options,
    keys: Sequence[str],
    label: str,
) -> None:
    """Apply what `_verdict` allowed: an opt-out, a confirmation of a pending request, or a
    missing name. An existing subscriber's own choices (sections) are never overwritten."""
    source, detail = _evidence(row, options, label)
    evidence = Evidence(source=source)
    if row.status == UNSUBSCRIBED and sub.status in (ACTIVE, PENDING):
        suppress_with_evidence(
            session, sub, "unsubscribed", now=options.now, keys=keys, evidence=evidence
        )
    elif row.status == ACTIVE and sub.status == PENDING:
        sub.status = ACTIVE
        sub.confirmed_at = row.consented_at or options.now
        sub.confirm_nonce = None
        sub.updated_at = options.now
        record(sub, IMPORT, evidence, options.now, **detail)
    if row.name and not sub.name:
        sub.name = row.name
        sub.updated_at = options.now


def _list(sections: tuple[str, ...] | None) -> list[str] | None:
    return None if sections is None else list(sections)


def import_file(
    session: Session,
    path: Path,
    *,
    options: Options,
    keys: Sequence[str],
    skip_invalid: bool = False,
) -> ImportResult:
    """Validate the whole file, then import it: all rows, or none if any is bad (unless
    `skip_invalid`, when the bad rows are reported and the rest imported)."""
    rows, errors = read_rows(read_text(path), options)
    if errors and not skip_invalid:
        raise InvalidFile(errors)
    result = import_rows(session, rows, options=options, keys=keys, label=path.name)
    result.errors = errors
    return result
