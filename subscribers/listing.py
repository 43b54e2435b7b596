"""Who is on the list: subscribers found by status, section and a search text, and how many
there are per status and per section (`digest subscribers list`).

A subscriber whose `sections` is empty gets every section, so counts per section are taken
against the newsletter's sections, which the caller passes in. Rows are read as plain tuples
(not ORM objects): a list of 100,000 people is read in well under a second.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from subscribers.models import Subscriber


@dataclass(frozen=True)
class Listed:
    email: str
    name: str | None
    status: str
    sections: tuple[str, ...] | None  # None: every section
    created_at: datetime
    confirmed_at: datetime | None
    paused_until: datetime | None


@dataclass
class Listing:
    """The first `limit` subscribers that match (by address), how many match in all, and the
    counts of everyone who matches per status and per section."""

    shown: list[Listed] = field(default_factory=list)
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_section: dict[str, Counter[str]] = field(default_factory=dict)


def list_subscribers(
    session: Session,
    sections: Sequence[str],
    *,
    status: str | None = None,
    section: str | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> Listing:
    """Subscribers with `status`, getting `section`, whose address or name contains `search`
    (any letter case), ordered by address; `limit` None shows them all."""
    s = Subscriber
    query = select(
        s.email, s.name, s.status, cast(s.sections, Text), s.created_at, s.confirmed_at,
        s.paused_until,
    ).order_by(s.email)  # fmt: skip
    if status is not None:
        query = query.where(s.status == status)
    if search:
        text = search.strip()
        query = query.where(
            or_(s.email.icontains(text, autoescape=True), s.name.icontains(text, autoescape=True))
        )
    listing = Listing(by_section={name: Counter() for name in sections})
    decoded: dict[str | None, tuple[str, ...] | None] = {}
    for email, name, state, raw, created, confirmed, paused in session.execute(query):
        if raw not in decoded:
            decoded[raw] = _sections(raw)
        chosen = decoded[raw]
        gets = sections if chosen is None else [n for n in chosen if n in listing.by_section]
        if section is not None and section not in gets:
            continue
        listing.total += 1
        listing.by_status[state] += 1
        for name_of_section in gets:
            listing.by_section[name_of_section][state] += 1
        if limit is None or len(listing.shown) < limit:
            listing.shown.append(Listed(email, name, state, chosen, created, confirmed, paused))
    return listing


def _sections(raw: str | None) -> tuple[str, ...] | None:
    """The stored JSON list (read as text, so that PostgreSQL's json type needs no operator);
    an empty or missing list means every section."""
    if raw is None:
        return None
    value = json.loads(raw)
    return tuple(value) if value else None
