"""The invariant recipients_for relies on: a suppressed address is never active, whatever
sequence of subscribing, confirming, leaving, bouncing, erasing and importing happens."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import digest.store.models  # noqa: F401  (the shared metadata needs every table)
from subscribers.consent import Evidence
from subscribers.errors import Suppressed
from subscribers.importer import Options, Row, import_rows
from subscribers.lifecycle import (
    Policy,
    add_confirmed,
    confirm,
    erase,
    find_by_email,
    is_suppressed,
    purge_pending,
    recipients_for,
    resubscribe,
    subscribe,
    suppress,
    unsubscribe,
)
from subscribers.models import ACTIVE, Base, Subscriber
from subscribers.ratelimit import ConfirmationLimits
from tests.subscribers_helpers import SECTIONS

KEYS = ["invariant-key"]
# No rate limit in the way: every subscribe gets its link, so confirm paths are exercised.
POLICY = Policy(SECTIONS, limits=ConfirmationLimits(timedelta(seconds=1), daily_cap=10_000))
WHO = Evidence("property test", ip="198.51.100.1")
START = datetime(2026, 1, 1, tzinfo=UTC)

addresses = st.sampled_from(["a@example.com", "b@example.com", "c@example.com"])
operations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "subscribe",
                "confirm",
                "unsubscribe",
                "leave-section",
                "bounce",
                "complain",
                "erase",
                "add",
                "import-active",
                "import-unsubscribed",
                "resubscribe",
                "purge",
            ]
        ),
        addresses,
    ),
    max_size=20,
)


def apply(session: Session, op: str, address: str, now: datetime, links: dict[str, str]) -> None:
    sub = find_by_email(session, address)
    if op == "subscribe":
        notice = subscribe(session, address, evidence=WHO, now=now, keys=KEYS, policy=POLICY)
        if notice is not None and notice.kind == "confirm":
            links[address] = notice.token
    elif op == "confirm" and address in links:
        confirm(session, links[address], evidence=WHO, now=now, keys=KEYS, policy=POLICY)
    elif op == "resubscribe" and sub is not None:
        notice = resubscribe(session, sub, evidence=WHO, now=now, keys=KEYS, policy=POLICY)
        if notice is not None:
            links[address] = notice.token
    elif op in ("unsubscribe", "leave-section") and sub is not None:
        section = "Europe" if op == "leave-section" else None
        unsubscribe(session, sub, evidence=WHO, now=now, keys=KEYS, policy=POLICY, section=section)
    elif op in ("bounce", "complain") and sub is not None:
        reason = "bounced" if op == "bounce" else "complained"
        suppress(session, sub, reason, now=now, keys=KEYS, source="webhook")
    elif op == "erase" and sub is not None:
        erase(session, sub, now=now, keys=KEYS)
    elif op == "add":
        with contextlib.suppress(Suppressed):
            add_confirmed(session, address, evidence=WHO, now=now, keys=KEYS, policy=POLICY)
    elif op.startswith("import-"):
        status = op.removeprefix("import-")
        row = Row(2, address, None, None, status, "a list", START)
        options = Options(SECTIONS, now)
        import_rows(session, [row], options=options, keys=KEYS, label="t.csv")
    elif op == "purge":
        purge_pending(session, now=now, policy=POLICY)
    session.flush()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_no_suppressed_address_is_ever_active_or_a_recipient(steps: list[tuple[str, str]]) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    links: dict[str, str] = {}
    with Session(engine) as session:
        now = START
        for op, address in steps:
            now += timedelta(minutes=1)
            apply(session, op, address, now, links)
            session.expire_all()
            for sub in session.scalars(select(Subscriber).where(Subscriber.status == ACTIVE)):
                assert not is_suppressed(session, sub.email, KEYS), (op, address, steps)
            mailed = {a.email for a in recipients_for(session, SECTIONS, now)}
            assert not any(is_suppressed(session, email, KEYS) for email in mailed)
    engine.dispose()
