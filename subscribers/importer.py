"""CSV import: validate the whole file (subscribers/csvrows.py), then write it, all rows or none.

Rules: a file with any bad row imports nothing (unless the caller skips bad rows); an address on
the suppression list is never added back; re-running a file changes nothing; an existing
subscriber's own choices (sections, status) are never overwritten, except that an opt-out in
the file is honoured and a pending subscriber with evidence in the file becomes active.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from subscribers.addresses import normalise_email
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
from subscribers.fastsql import Prepared
from subscribers.models import (
    ACTIVE,
    PENDING,
    UNSUBSCRIBED,
    Base,
    Consent,
    Subscriber,
    Suppression,
)
from subscribers.suppression import suppress_with_evidence

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


def _table(model: type[Base]) -> Table:
    """The model's Core table: inserting into it skips the ORM's bulk bookkeeping."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


_SUBSCRIBERS, _CONSENTS, _SUPPRESSIONS = _table(Subscriber), _table(Consent), _table(Suppression)
# Compiled once per dialect (subscribers/fastsql.py); rows are tuples in these keys' order.
_ADD_SUBSCRIBERS = Prepared(
    insert(_SUBSCRIBERS),
    [
        "public_id",
        "email",
        "name",
        "status",
        "sections",
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "requested_at",
    ],
)
_ADD_CONSENTS = Prepared(insert(_CONSENTS), ["subscriber_id", "event", "at", "source", "detail"])
_ADD_SUPPRESSIONS = Prepared(insert(_SUPPRESSIONS), ["email_hash", "reason", "created_at"])


@lru_cache(maxsize=16)
def _known(count: int) -> Prepared:
    """id, status and name of the subscribers among `count` addresses."""
    names = [f"e{i}" for i in range(count)]
    sub = _SUBSCRIBERS.c
    return Prepared(
        select(sub.email, sub.id, sub.status, sub.name).where(
            sub.email.in_([bindparam(name) for name in names])
        ),
        names,
    )


@lru_cache(maxsize=16)
def _listed(count: int) -> Prepared:
    """Which of `count` keyed hashes are on the suppression list."""
    names = [f"h{i}" for i in range(count)]
    return Prepared(
        select(_SUPPRESSIONS.c.email_hash).where(
            _SUPPRESSIONS.c.email_hash.in_([bindparam(name) for name in names])
        ),
        names,
    )


def _hasher(keys: Sequence[str]) -> Callable[[str], list[str]]:
    """subscribers.suppression.email_hashes with the keys encoded once, not once per row."""
    encoded = [key.encode() for key in keys]

    def hashes(email: str) -> list[str]:
        data = normalise_email(email).encode()
        return [hmac.digest(key, data, "sha256").hex() for key in encoded]

    return hashes


_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # uuid4's version nibble and RFC 4122 variant bits
_RANDOM_BITS = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)


def _public_ids(count: int) -> list[str]:
    """`count` values of models.new_public_id() (uuid4().hex: 122 random bits), from one
    os.urandom call: uuid.uuid4() costs a few microseconds a row in Python."""
    raw = os.urandom(16 * count)
    take = int.from_bytes
    return [
        "%032x" % ((take(raw[i : i + 16]) & _RANDOM_BITS) | _VERSION_4)
        for i in range(0, 16 * count, 16)
    ]


def import_rows(
    session: Session, rows: Sequence[Row], *, options: Options, keys: Sequence[str], label: str
) -> ImportResult:
    """Apply valid rows in chunks (a few queries per thousand rows, not per row). The caller
    owns the transaction, so a failure anywhere leaves nothing behind."""
    result = ImportResult()
    hashes = _hasher(keys)
    session.flush()  # the lookups below go straight to the driver: they must see everything
    for start in range(0, len(rows), CHUNK):
        _import_chunk(session, rows[start : start + CHUNK], options, keys, hashes, label, result)
    return result


def _import_chunk(
    session: Session,
    rows: Sequence[Row],
    options: Options,
    keys: Sequence[str],
    hashes: Callable[[str], list[str]],
    label: str,
    result: ImportResult,
) -> None:
    connection = session.connection()
    by_email = {row.email: hashes(row.email) for row in rows}
    every_hash = [h for hs in by_email.values() for h in hs]
    blocked = {h for (h,) in _listed(len(every_hash)).fetch_bound(connection, every_hash)}
    # Plain tuples, not ORM objects: on a re-run every row exists, and most need nothing.
    emails = list(by_email)
    existing = {
        email: (sid, status, name)
        for email, sid, status, name in _known(len(emails)).fetch_bound(connection, emails)
    }
    fresh: list[Row] = []
    changes: dict[int, Row] = {}
    for row in rows:
        is_blocked = bool(blocked) and not blocked.isdisjoint(by_email[row.email])
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
        chosen = select(Subscriber).where(Subscriber.id.in_(list(changes))).order_by(Subscriber.id)
        for sub in session.scalars(chosen):
            _update(session, sub, changes[sub.id], options, keys, label)
        result.updated += len(changes)
        session.flush()  # the next chunk's lookups go straight to the driver
    _insert(connection, fresh, options, by_email, label)
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
    connection: Connection,
    rows: Sequence[Row],
    options: Options,
    hashes: dict[str, list[str]],
    label: str,
) -> None:
    """One executemany per table per chunk, at the driver (subscribers/fastsql.py): the ORM's
    per-row bookkeeping would cost more than the database does. What every row shares (the
    import's time, each distinct section list) is bound once."""
    if not rows:
        return
    process = _ADD_SUBSCRIBERS.processors(connection)
    stamp = process["created_at"]  # every datetime column is a UTCDateTime
    now = stamp(options.now)
    listed = process["sections"]
    lists: dict[tuple[str, ...] | None, Any] = {}
    subscribers = []
    for row, public_id in zip(rows, _public_ids(len(rows)), strict=True):
        status, sections = row.status, row.sections
        when = now if row.consented_at is None else stamp(row.consented_at)
        if sections not in lists:
            lists[sections] = listed(None if sections is None else list(sections))
        subscribers.append(
            (
                public_id,
                row.email,
                row.name,
                status,
                lists[sections],
                when,
                now,
                when if status in (ACTIVE, UNSUBSCRIBED) else None,
                now if status == UNSUBSCRIBED else None,
                now if status == PENDING else None,
            )
        )
    _ADD_SUBSCRIBERS.executemany_bound(connection, subscribers)
    emails = [row.email for row in rows]
    ids = {email: sid for email, sid, _, _ in _known(len(emails)).fetch_bound(connection, emails)}
    detail = _ADD_CONSENTS.processors(connection)["detail"]
    consents = []
    for row in rows:
        source, evidence = _evidence(row, options, label)
        consents.append((ids[row.email], IMPORT, now, source, detail(evidence)))
    _ADD_CONSENTS.executemany_bound(connection, consents)
    # An opt-out in the file goes on the suppression list too, so no later file re-adds it.
    opted_out = [
        (hashes[row.email][0], "unsubscribed", now) for row in rows if row.status == UNSUBSCRIBED
    ]
    _ADD_SUPPRESSIONS.executemany_bound(connection, opted_out)


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
        sub.requested_name = sub.requested_sections = None
        sub.updated_at = options.now
        record(sub, IMPORT, evidence, options.now, **detail)
    if row.name and not sub.name:
        sub.name = row.name
        sub.updated_at = options.now


def import_file(
    session: Session,
    path: Path,
    *,
    options: Options,
    keys: Sequence[str],
    skip_invalid: bool = False,
) -> ImportResult:
    """Validate the whole file, then import it: all rows, or none if any is bad (unless
    `skip_invalid`, when the bad rows are reported and the rest imported). A file without one
    valid row is refused either way: skipping every row is not an import."""
    rows, errors = read_rows(read_text(path), options)
    if not rows:
        problems = errors or [RowError(1, "the header is the only line: no subscribers in it")]
        raise InvalidFile(problems, "the file has no valid row; nothing imported")
    if errors and not skip_invalid:
        raise InvalidFile(errors)
    result = import_rows(session, rows, options=options, keys=keys, label=path.name)
    result.errors = errors
    return result
