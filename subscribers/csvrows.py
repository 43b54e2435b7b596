"""Reading a subscriber CSV: every row parsed and checked, every bad row named with its line.

Columns: email (required), name, sections (';'-separated; empty = all), status (active,
pending, unsubscribed; empty = pending), source and consented_at (the consent evidence an
active row needs). The export's extra columns are accepted and ignored, so an export imports.
Pure: text in, rows and errors out; subscribers/importer.py writes them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from subscribers.addresses import validate_email
from subscribers.csvcells import csv_value
from subscribers.errors import InvalidEmail, SubscriberError
from subscribers.models import ACTIVE, PENDING, UNSUBSCRIBED
from subscribers.names import clean_name

IMPORTABLE = (ACTIVE, PENDING, UNSUBSCRIBED)
COLUMNS = ("email", "name", "sections", "status", "source", "consented_at")
# Columns an export writes that an import reads past.
IGNORED = ("public_id", "created_at", "confirmed_at", "unsubscribed_at", "paused_until")
MAX_SOURCE = 500
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

    def __init__(self, errors: Sequence[RowError], message: str | None = None) -> None:
        self.errors = list(errors)
        self.no_valid_row = message is not None
        count = len(self.errors)
        rows = "1 invalid row" if count == 1 else f"{count:,} invalid rows"
        super().__init__(message or f"{rows}; nothing imported")


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
    """Every row parsed and checked; the valid ones and one error per bad one.

    The reader is strict: a quote that is never closed would otherwise swallow the rest of the
    file into one field of one row, and that row could pass as valid (a name of 500 lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
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
            errors.append(RowError(start, _malformed(exc, _line_count(text) - start)))
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


def _malformed(exc: csv.Error, unread: int) -> str:
    """Why the reader stopped at this line, and how much of the file it did not check."""
    rest = (
        "the line after it was not read"
        if unread == 1
        else f"the {unread:,} lines after it were not read"
    )
    if "unexpected end of data" in str(exc):
        why = "a quote opened on this line is never closed"
    else:
        why = f"malformed CSV ({exc})"
    if unread <= 0:
        return f"{why}; close it and run again" if "quote" in why else why
    return f"{why}, so {rest}; fix it and run again"


def _line_count(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


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
    # csv_value takes off the apostrophe an export puts before a cell a spreadsheet would run.
    values = {h: csv_value(f).strip() for h, f in zip(header, fields, strict=False)}
    for column, value in values.items():
        if "\x00" in value:
            raise ValueError(f"the {column} column contains a NUL character")
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
    name = clean_name(values.get("name"))  # InvalidName is a ValueError: the row's error
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
