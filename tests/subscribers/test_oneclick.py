"""The one-click hot path makes exactly the change the ORM's unsubscribe makes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

import digest.store.models  # noqa: F401  (the shared metadata needs every table)
from subscribers.consent import Evidence
from subscribers.lifecycle import Policy, add_confirmed, find_by_email, suppress, unsubscribe
from subscribers.models import Base, Consent, Subscriber, Suppression
from subscribers.oneclick import (
    UnsubscribeTokens,
    unsubscribe_public_id,
    unsubscribe_public_ids,
)
from subscribers.suppression import add_suppression, email_hash
from subscribers.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, TokenError, make_token, read_token
from tests.subscribers_helpers import SECTIONS

KEYS = ["the-newest-key", "an-older-key"]
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
CLICK = Evidence("one-click", ip="192.0.2.9", user_agent="Google-Unsubscribe")


def add(session: Session, address: str) -> Subscriber:
    add_confirmed(
        session, address, evidence=Evidence("t"), now=NOW, keys=KEYS, policy=Policy(SECTIONS)
    )
    sub = find_by_email(session, address)
    assert sub is not None
    sub.confirm_nonce = "open-link"
    return sub


def snapshot(session: Session, address: str) -> tuple[object, ...]:
    session.expire_all()
    sub = find_by_email(session, address)
    assert sub is not None
    events = [
        (c.event, c.at, c.source, c.ip, c.user_agent, c.consent_text_version, c.detail)
        for c in sub.consents
    ]
    entries = session.execute(
        select(Suppression.reason, Suppression.created_at).where(
            Suppression.email_hash == email_hash(address, KEYS[0])
        )
    ).all()
    state = (sub.status, sub.updated_at, sub.unsubscribed_at, sub.confirm_nonce, sub.sections)
    return state, events, entries


def both_ways(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        orm, fast = add(session, "orm@example.com"), add(session, "fast@example.com")
        fast_id = fast.public_id
        later = NOW + timedelta(days=1)
        unsubscribe(session, orm, evidence=CLICK, now=later, keys=KEYS, policy=Policy(SECTIONS))
    with engine.begin() as connection:
        changed = unsubscribe_public_id(connection, fast_id, evidence=CLICK, now=later, keys=KEYS)
    with Session(engine) as session:
        assert changed
        assert snapshot(session, "fast@example.com") == snapshot(session, "orm@example.com")


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_the_fast_path_writes_what_the_orm_writes_on_sqlite(sqlite_engine: Engine) -> None:
    both_ways(sqlite_engine)


@pytest.mark.postgres
def test_the_fast_path_writes_what_the_orm_writes_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url, connect_args={"options": "-csearch_path=oneclick_test"})
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS oneclick_test CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA oneclick_test")
    try:
        Base.metadata.create_all(engine)
        both_ways(engine)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS oneclick_test CASCADE")
        engine.dispose()


def test_a_repeat_changes_nothing(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session, session.begin():
        public_id = add(session, "again@example.com").public_id
    for expected in (True, False):
        with sqlite_engine.begin() as connection:
            done = unsubscribe_public_id(connection, public_id, evidence=CLICK, now=NOW, keys=KEYS)
        assert done is expected
    with Session(sqlite_engine) as session:
        assert len(session.scalars(select(Consent)).all()) == 2  # admin-add, unsubscribe
        assert len(session.scalars(select(Suppression)).all()) == 1


def test_an_unknown_id_changes_nothing(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        assert not unsubscribe_public_id(connection, "f" * 32, evidence=CLICK, now=NOW, keys=KEYS)


def test_an_entry_under_an_older_key_is_not_duplicated(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session, session.begin():
        public_id = add(session, "old@example.com").public_id
        add_suppression(session, "old@example.com", "bounced", now=NOW, keys=[KEYS[1]])
    with sqlite_engine.begin() as connection:
        unsubscribe_public_id(connection, public_id, evidence=CLICK, now=NOW, keys=KEYS)
    with Session(sqlite_engine) as session:
        entries = session.execute(select(Suppression.email_hash, Suppression.reason)).all()
    assert entries == [(email_hash("old@example.com", KEYS[1]), "bounced")]


def test_a_bounced_subscriber_becomes_unsubscribed(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session, session.begin():
        sub = add(session, "bounce@example.com")
        suppress(session, sub, "bounced", now=NOW, keys=KEYS, source="webhook")
        public_id = sub.public_id
    with sqlite_engine.begin() as connection:
        assert unsubscribe_public_id(connection, public_id, evidence=CLICK, now=NOW, keys=KEYS)
    with Session(sqlite_engine) as session:
        assert find_by_email(session, "bounce@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def burst_setup(engine: Engine) -> list[tuple[str, Evidence]]:
    """Subscribers in every state a one-click request can meet, with fixed public ids, and a
    burst of requests: repeats, an unknown id, each with evidence of its own."""
    with Session(engine) as session, session.begin():
        for n, address in enumerate(["a@example.com", "b@example.com", "c@example.com"]):
            add(session, address).public_id = f"{n:032x}"
        bounced = add(session, "bounced@example.com")
        bounced.public_id = "b" * 32
        suppress(session, bounced, "bounced", now=NOW, keys=KEYS, source="webhook")
        add(session, "old@example.com").public_id = "d" * 32
        add_suppression(session, "old@example.com", "bounced", now=NOW, keys=[KEYS[1]])
        left = add(session, "left@example.com")
        left.public_id = "e" * 32
        unsubscribe(session, left, evidence=CLICK, now=NOW, keys=KEYS, policy=Policy(SECTIONS))
    ids = [f"{1:032x}", "f" * 32, f"{0:032x}", "b" * 32, f"{1:032x}", "d" * 32, "e" * 32]
    return [
        (public_id, Evidence(f"click {i}", ip=f"192.0.2.{i}", user_agent=f"agent {i}"))
        for i, public_id in enumerate([*ids, f"{2:032x}"])
    ]


def everything(engine: Engine) -> list[list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return [
            [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in ("subscribers", "consents", "suppressions")
        ]


def burst_both_ways(make_engine: Callable[[], Engine]) -> None:
    later = NOW + timedelta(hours=1)
    one_by_one, together = make_engine(), make_engine()
    requests = burst_setup(one_by_one)
    assert burst_setup(together) == requests
    answers = []
    for public_id, evidence in requests:
        with one_by_one.begin() as connection:
            answers.append(
                unsubscribe_public_id(
                    connection, public_id, evidence=evidence, now=later, keys=KEYS
                )
            )
    with together.begin() as connection:
        assert unsubscribe_public_ids(connection, requests, now=later, keys=KEYS) == answers
    assert answers == [True, False, True, True, False, True, False, True]
    assert everything(together) == everything(one_by_one)


def test_a_burst_in_one_transaction_writes_what_one_at_a_time_writes_on_sqlite() -> None:
    def make() -> Engine:
        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        return engine

    burst_both_ways(make)


@pytest.mark.postgres
def test_a_burst_in_one_transaction_writes_what_one_at_a_time_writes_on_postgresql(
    postgres_url: str,
) -> None:
    made: list[tuple[Engine, str]] = []

    def make() -> Engine:
        schema = f"burst_test_{len(made)}"
        engine = create_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        Base.metadata.create_all(engine)
        made.append((engine, schema))
        return engine

    try:
        burst_both_ways(make)
    finally:
        for engine, schema in made:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            engine.dispose()


def test_an_empty_burst_does_nothing(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        assert unsubscribe_public_ids(connection, [], now=NOW, keys=KEYS) == []


def reference(keys: list[str], token: str) -> str | None:
    try:
        return read_token(keys, UNSUBSCRIBE, token, NOW)
    except TokenError:
        return None


def fast(keys: list[str], token: str) -> str | None:
    try:
        return UnsubscribeTokens(keys).read(token)
    except TokenError:
        return None


token_keys = st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3, unique=True)
ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(token_keys, ids, st.data())
def test_the_fast_token_check_agrees_with_read_token_on_genuine_and_rotated_tokens(
    keys: list[str], public_id: str, data: st.DataObject
) -> None:
    signer = data.draw(st.sampled_from(keys))  # minted under any key still listed
    token = make_token([signer], UNSUBSCRIBE, public_id, NOW)
    assert fast(keys, token) == reference(keys, token) == public_id


@given(token_keys, ids, st.data())
def test_the_fast_token_check_reads_the_links_itsdangerous_wrote_before(
    keys: list[str], public_id: str, data: st.DataObject
) -> None:
    signer = data.draw(st.sampled_from(keys))
    old = Signer(
        signer, salt="digest.unsubscribe", key_derivation="hmac", digest_method=hashlib.sha256
    )
    token = old.sign(public_id).decode()
    assert fast(keys, token) == reference(keys, token) == public_id
    assert fast(keys, token[:-1] + ("A" if token[-1] != "A" else "Q")) is None


@given(token_keys, ids, st.data())
def test_the_fast_token_check_agrees_with_read_token_on_tampered_tokens(
    keys: list[str], public_id: str, data: st.DataObject
) -> None:
    token = make_token(keys, UNSUBSCRIBE, public_id, NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    drawn = data.draw(st.characters(codec="utf-8"))  # a different character, without filtering:
    replacement = drawn if drawn != token[index] else chr(ord(drawn) ^ 1)
    cut = data.draw(st.integers(0, 2))
    tampered = (token[:index] + replacement + token[index + 1 :])[: len(token) + 1 - cut]
    assert fast(keys, tampered) == reference(keys, tampered) is None


@given(token_keys, ids, st.sampled_from([MANAGE, CONFIRM]))
def test_the_fast_token_check_refuses_other_purposes_like_read_token(
    keys: list[str], public_id: str, purpose: str
) -> None:
    token = make_token(keys, purpose, public_id, NOW)
    assert fast(keys, token) == reference(keys, token) is None


@given(token_keys, st.text(max_size=250))
def test_the_fast_token_check_agrees_with_read_token_on_any_text(
    keys: list[str], text_token: str
) -> None:
    assert fast(keys, text_token) == reference(keys, text_token)


def test_a_genuine_token_with_another_spelling_of_its_last_character_is_refused() -> None:
    token = make_token(KEYS, UNSUBSCRIBE, "0" * 32, NOW)
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bits = [c for c in last if last.index(c) >> 2 == last.index(token[-1]) >> 2]
    for other in same_bits:
        spelled = token[:-1] + other
        assert fast(KEYS, spelled) == reference(KEYS, spelled)
        assert (fast(KEYS, spelled) is not None) == (other == token[-1])
