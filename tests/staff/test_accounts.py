"""Staff accounts, tokens and sessions (digest/staff): argon2 hashes, sign-in between two rate
limits, tokens stored as hashes and revoked, sessions that end when the person signs out,
changes their password or is removed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import Forbidden, NotFoundError, NotSignedIn, UsageError
from digest.staff import accounts, roles, sessions, signin, tokens
from digest.store.db import transaction
from digest.store.models import DRAFT, EDITOR, PUBLISHER, StaffMember, StaffToken
from digest.store.ratelimit import Limiter

PASSWORD = "a long enough password"


@pytest.fixture
def ann(factory: sessionmaker[Session], now: datetime) -> str:
    with transaction(factory) as session:
        return accounts.add(session, " Ann@Example.ORG ", PUBLISHER, PASSWORD, now).email


def test_the_password_is_stored_as_an_argon2id_hash(
    factory: sessionmaker[Session], ann: str
) -> None:
    with factory() as session:
        member = session.scalar(select(StaffMember))
        assert member is not None and member.email == "ann@example.org"
        assert (
            member.password_hash.startswith("$argon2id$") and PASSWORD not in member.password_hash
        )


@pytest.mark.parametrize(
    ("email", "role", "password", "message"),
    [
        ("nobody", EDITOR, PASSWORD, "is not an email address"),
        ("b@example.org", "boss", PASSWORD, "choose editor or publisher"),
        ("b@example.org", EDITOR, "short", "at least 12"),
        ("b@example.org", EDITOR, " padded password ", "white space"),
        ("ann@example.org", EDITOR, PASSWORD, "already a staff member"),
    ],
)
def test_a_bad_account_is_refused_with_one_line(
    factory: sessionmaker[Session],
    now: datetime,
    ann: str,
    email: str,
    role: str,
    password: str,
    message: str,
) -> None:
    with pytest.raises(UsageError, match=message), transaction(factory) as session:
        accounts.add(session, email, role, password, now)


def test_authenticate_knows_the_password_and_nothing_else(
    factory: sessionmaker[Session], now: datetime, ann: str
) -> None:
    with transaction(factory) as session:
        assert accounts.authenticate(session, "ANN@example.org", PASSWORD, now) is not None
        assert accounts.authenticate(session, ann, PASSWORD + "x", now) is None
        assert accounts.authenticate(session, "who@example.org", PASSWORD, now) is None
        assert accounts.authenticate(session, "not an address", PASSWORD, now) is None
        assert accounts.authenticate(session, ann, "x" * 5000, now) is None


def test_a_token_is_stored_as_its_hash_and_revoked_by_id(
    factory: sessionmaker[Session], now: datetime, ann: str
) -> None:
    with transaction(factory) as session:
        row, token = tokens.issue(session, ann, "laptop", now)
    assert token.startswith("dgst_") and len(token) > 40
    with transaction(factory) as session:
        stored = session.scalar(select(StaffToken))
        assert stored is not None and stored.token_hash == tokens.token_hash(token)
        who = tokens.authenticate(session, token, now)
        assert (who.email, who.role, who.via, who.token_id) == (ann, PUBLISHER, "token", row.id)
    with transaction(factory) as session:
        assert tokens.revoke(session, row.id, now)[1] is True
        assert tokens.revoke(session, row.id, now)[1] is False
    with transaction(factory) as session, pytest.raises(NotSignedIn, match="was revoked"):
        tokens.authenticate(session, token, now)
    with transaction(factory) as session, pytest.raises(NotFoundError):
        tokens.revoke(session, 999, now)


def test_a_session_ends_with_sign_out_a_new_password_removal_or_time(
    factory: sessionmaker[Session], now: datetime, ann: str
) -> None:
    def start() -> str:
        with transaction(factory) as session:
            member = accounts.find(session, ann)
            return sessions.start(session, member, now, hours=12)[0]

    def alive(session_id: str, at: datetime = now) -> bool:
        try:
            with transaction(factory) as session:
                sessions.resume(session, session_id, at)
            return True
        except NotSignedIn:
            return False

    one = start()
    assert alive(one) and not alive(one, now + timedelta(hours=12))
    two = start()
    with transaction(factory) as session:
        assert sessions.end(session, two)
    assert not alive(two)
    three = start()
    with transaction(factory) as session:
        accounts.set_password(session, ann, "another long password", now)
    assert not alive(three)
    four = start()
    with transaction(factory) as session:
        accounts.remove(session, ann)
    assert not alive(four)


def test_the_cookie_is_signed_and_a_forged_one_is_none(settings: Settings) -> None:
    cookies = sessions.Cookies(settings.secret_keys())
    value = cookies.dumps("abc")
    assert cookies.loads(value) == "abc"
    assert cookies.loads(value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert sessions.Cookies(["another key"]).loads(value) is None


def test_sign_in_counts_failures_per_account_and_ip_then_refuses_even_the_right_password(
    factory: sessionmaker[Session], engine: Engine, settings: Settings, now: datetime, ann: str
) -> None:
    limiter = Limiter(engine)
    staff = settings.staff.model_copy(update={"login_failures": 3})

    def attempt(password: str, ip: str = "192.0.2.1", at: datetime = now) -> signin.SignIn:
        return signin.sign_in(lambda: transaction(factory), limiter, staff, ann, password, ip, at)

    assert [attempt("wrong").ok for _ in range(3)] == [False] * 3
    locked = attempt(PASSWORD)
    assert not locked.ok and locked.wait_s > 0
    assert not attempt(PASSWORD, ip="198.51.100.9").ok  # the account is locked, from anywhere
    later = now + timedelta(minutes=staff.login_window_minutes)
    done = attempt(PASSWORD, at=later)
    assert done.ok and done.email == ann and done.csrf_token
    assert attempt(PASSWORD, at=later).ok  # success cleared the account's count


def test_roles_editors_edit_drafts_publishers_do_everything() -> None:
    editor = roles.Principal(1, "e@x.org", EDITOR, roles.TOKEN)
    publisher = roles.Principal(2, "p@x.org", PUBLISHER, roles.TOKEN)
    assert [a for a in roles.ACTIONS if roles.allowed(EDITOR, a)] == ["read", "edit", "test"]
    assert all(roles.allowed(PUBLISHER, a) for a in roles.ACTIONS)
    with pytest.raises(Forbidden, match="only a publisher may approve"):
        roles.check(editor, roles.APPROVE)
    roles.check_edit(editor, 1, DRAFT)
    with pytest.raises(Forbidden, match="unapprove it first"):
        roles.check_edit(editor, 1, "approved")
    roles.check_edit(publisher, 1, "approved")
    assert roles.allowed("intern", roles.READ) is False
