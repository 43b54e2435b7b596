"""Getting data out: everything held about one person (GDPR Art. 15/20: "structured, commonly
used and machine-readable"), and the whole list as CSV or JSON.

The list's CSV has the import's columns first (email, name, sections, status, source,
consented_at), so an export imports back into an empty database unchanged; a cell a
spreadsheet would run as a formula is guarded with an apostrophe, which the import takes off.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from subscribers.consent import ADMIN_ADD, IMPORT, SUBSCRIBE
from subscribers.csvcells import csv_cell
from subscribers.models import Consent, Subscriber
from subscribers.suppression import suppression_for

CSV_COLUMNS = (
    "email",
    "name",
    "sections",
    "status",
    "source",
    "consented_at",
    "public_id",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "paused_until",
)
CHUNK = 1000
# What json.dumps(ensure_ascii=False) leaves raw but a terminal acts on or a reader is misled
# by: DEL and the C1 controls (U+009B starts an escape sequence in some terminals), bidi
# overrides and isolates, line and paragraph separators, and lone surrogates (which cannot
# even be written as UTF-8). Written as \uXXXX escapes instead: the same JSON value.
_UNSAFE_IN_JSON = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


def json_text(value: Any, indent: int | None = None) -> str:
    """`value` as JSON that keeps letters readable (no ASCII-only escaping) and is safe to
    print: every character a terminal would act on is a \\uXXXX escape."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def consent_record(event: Consent) -> dict[str, Any]:
    return {
        "event": event.event,
        "at": _iso(event.at),
        "source": event.source,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "consent_text_version": event.consent_text_version,
        "detail": event.detail,
    }


def person_record(session: Session, sub: Subscriber, keys: Sequence[str]) -> dict[str, Any]:
    """Everything the subscriber domain holds about one person. digest adds its own tables
    (the delivery ledger) on top: see digest/people/privacy.py."""
    entry = suppression_for(session, sub.email, keys)
    return {
        "subscriber": {
            "email": sub.email,
            "name": sub.name,
            "public_id": sub.public_id,
            "status": sub.status,
            "sections": sub.sections,
            "paused_until": _iso(sub.paused_until),
            "created_at": _iso(sub.created_at),
            "updated_at": _iso(sub.updated_at),
            "confirmed_at": _iso(sub.confirmed_at),
            "unsubscribed_at": _iso(sub.unsubscribed_at),
            "confirmation_pending": sub.confirm_nonce is not None,
            # What an open request asked for, applied only when its link is used.
            "pending_request": None
            if sub.confirm_nonce is None
            else {"name": sub.requested_name, "sections": sub.requested_sections},
        },
        "consent_history": [consent_record(c) for c in sub.consents],
        "suppression": None
        if entry is None
        else {"reason": entry.reason, "since": _iso(entry.created_at)},
    }


def _evidence(sub: Subscriber) -> tuple[str | None, str | None]:
    """Where the latest consent came from (the form, an import, an operator) and when it was
    given (confirmed), for the CSV's source and consented_at columns."""
    origins = [c for c in sub.consents if c.event in (SUBSCRIBE, IMPORT, ADMIN_ADD)]
    origin = origins[-1] if origins else None
    when = sub.confirmed_at or (origin.at if origin else None)
    return (origin.source if origin else None), _iso(when)


def iter_subscribers(session: Session, status: str | None = None) -> Iterator[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id).options(selectinload(Subscriber.consents))
    if status is not None:
        query = query.where(Subscriber.status == status)
    last = 0
    while True:
        chunk = session.scalars(query.where(Subscriber.id > last).limit(CHUNK)).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].id
        session.expunge_all()  # keep memory flat on a large list


def csv_row(sub: Subscriber) -> dict[str, str]:
    source, consented_at = _evidence(sub)
    values: dict[str, str | None] = {
        "email": sub.email,
        "name": sub.name,
        "sections": ";".join(sub.sections) if sub.sections is not None else "",
        "status": sub.status,
        "source": source,
        "consented_at": consented_at,
        "public_id": sub.public_id,
        "created_at": _iso(sub.created_at),
        "confirmed_at": _iso(sub.confirmed_at),
        "unsubscribed_at": _iso(sub.unsubscribed_at),
        "paused_until": _iso(sub.paused_until),
    }
    # Every cell guarded (subscribers/csvcells.py): a name or an address can start with "=".
    return {k: csv_cell(v or "") for k, v in values.items()}


def write_csv(session: Session, out: TextIO, status: str | None = None) -> int:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for sub in iter_subscribers(session, status):
        writer.writerow(csv_row(sub))
        count += 1
    return count


def write_json(
    session: Session, out: TextIO, keys: Sequence[str], status: str | None = None
) -> int:
    """A JSON array of person records, written as it streams (a list can be large)."""
    count = 0
    out.write("[")
    for sub in iter_subscribers(session, status):
        out.write(",\n" if count else "\n")
        out.write(json_text(person_record(session, sub, keys)))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
