"""CSV import: validate the whole file (subscribers/csvrows.py), then write it, all rows or none.

Rules: a file with any bad row imports nothing (unless the caller skips bad rows); an address on
the suppression list is never added back; re-running a file changes nothing; an existing
subscriber's own choices (sections, status) are never overwritten, except that an opt-out in
the file is honoured and a pending subscriber with evidence in the file becomes active.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from subscribers.consent import IMPORT, Evidence, record
from subscribers.csvrows import (
    COLUMNS,
    ImportResult,
    InvalidFile,
    Options,
    Row,
    RowError,
    read_rows,
    read_text,
)
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

__all__ = [
    "COLUMNS",
    "ImportResult",
    "InvalidFile",
    "Options",
    "Row",
    "RowError",
    "import_file",
    "import_rows",
    "read_rows",
    "read_text",
]

CHUNK = 1000


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
