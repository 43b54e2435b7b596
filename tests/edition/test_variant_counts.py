"""An edition's readers per variant (digest.edition.queries.variant_counts), counted in the
database by the sections people chose (subscribers.audience.choices), equal the ones
`recipients_for`, the consent query, yields person by person: on SQLite and PostgreSQL, with
paused, pending, unconfirmed and unsubscribed people, every section, none, unknown ones, and
the same sections in another order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import update

from digest.edition.queries import get_edition, variant_counts
from digest.ledger.moves import variant_key
from digest.store.db import transaction
from subscribers.audience import choices, recipients_for, recipients_query
from subscribers.models import PENDING, UNSUBSCRIBED, Subscriber
from tests.send_helpers import SECTIONS, LedgerDb, add_subscribers, make_edition

CHOSEN: list[list[str] | None] = [
    None,
    [],
    ["Europe"],
    ["Asia", "Europe"],
    ["Europe", "Asia"],
    ["Sport"],
    ["Sport", "Diplomacy"],
    list(SECTIONS),
    ["Middle East", "Military Industrial Complex"],
]


def test_variant_counts_are_the_consent_querys(ledger_db: LedgerDb, now: datetime) -> None:
    factory = ledger_db.factory
    edition_id = make_edition(factory, now, sections=SECTIONS[:3])  # Middle East, Europe, Asia
    add_subscribers(factory, 400, now - timedelta(days=30), sections=CHOSEN)
    rng = random.Random(16)
    ids = list(range(1, 401))
    changes = {
        "paused": {"paused_until": now + timedelta(days=7)},
        "pause over": {"paused_until": now - timedelta(days=1)},
        "pending": {"status": PENDING},
        "unconfirmed": {"confirmed_at": None},
        "left": {"status": UNSUBSCRIBED},
    }
    with transaction(factory) as session:
        for values in changes.values():
            chosen = rng.sample(ids, 25)
            session.execute(update(Subscriber).where(Subscriber.id.in_(chosen)).values(**values))
    with factory() as session:
        edition = get_edition(session, edition_id)
        expected = Counter(
            variant_key(a.sections) for a in recipients_for(session, edition.sections, now)
        )
        counted = variant_counts(session, edition, now)
        groups = choices(session, now)
        everyone = len(session.execute(recipients_query(now)).all())
    assert counted == dict(sorted(expected.items())) and sum(counted.values()) > 200
    assert set(counted) == {
        "Middle East|Europe|Asia",
        "Europe",
        "Europe|Asia",
        "Middle East",
    }
    assert sum(n for _, n in groups) == everyone  # those who chose nothing included
