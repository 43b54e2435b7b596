"""Link tokens: purpose-bound, tamper-evident, rotating keys, confirm links expire, others never."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import Signer

from subscribers.tokens import (
    CONFIRM,
    MANAGE,
    UNSUBSCRIBE,
    TokenError,
    TokenExpired,
    link_signatures,
    make_confirm_token,
    make_token,
    minter,
    read_confirm_token,
    read_token,
)

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
KEYS = ["newest-key-0123456789", "older-key-9876543210"]
public_ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
keys = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=","), min_size=1, max_size=40
)
DAY = 24 * 3600


@given(public_ids, st.sampled_from([MANAGE, UNSUBSCRIBE]))
def test_a_token_reads_back_to_its_public_id(public_id: str, purpose: str) -> None:
    token = make_token(KEYS, purpose, public_id, NOW)
    assert read_token(KEYS, purpose, token, NOW) == public_id


def _itsdangerous(key: str | list[str], purpose: str) -> Signer:
    """How link tokens were written before: still in old emails, so still read."""
    salt = f"digest.{purpose}"
    return Signer(key, salt=salt, key_derivation="hmac", digest_method=hashlib.sha256)


@given(public_ids, keys, st.sampled_from([MANAGE, UNSUBSCRIBE]))
def test_a_link_written_before_by_itsdangerous_still_reads(
    public_id: str, key: str, purpose: str
) -> None:
    old = _itsdangerous(key, purpose).sign(public_id).decode()
    assert read_token([key], purpose, old, NOW) == public_id
    assert read_token(["a-newer-key", key], purpose, old, NOW) == public_id  # after a rotation


@given(public_ids, st.permutations([MANAGE, UNSUBSCRIBE]))
def test_a_legacy_link_of_one_purpose_does_nothing_for_the_other(
    public_id: str, order: list[str]
) -> None:
    old = _itsdangerous(KEYS[0], order[0]).sign(public_id).decode()
    with pytest.raises(TokenError):
        read_token(KEYS, order[1], old, NOW)


@given(public_ids, keys)
def test_both_link_signatures_are_the_halves_of_one_keyed_blake2b(public_id: str, key: str) -> None:
    derived = hmac.digest(key.encode(), b"digest.links", "sha256")
    digest = hashlib.blake2b(public_id.encode(), key=derived, digest_size=48).digest()
    unsubscribe = base64.urlsafe_b64encode(digest[:24]).decode()
    manage = base64.urlsafe_b64encode(digest[24:]).decode()
    assert make_token([key], UNSUBSCRIBE, public_id, NOW) == f"{public_id}.{unsubscribe}"
    assert make_token([key], MANAGE, public_id, NOW) == f"{public_id}.{manage}"
    assert len(unsubscribe) == len(manage) == 32


@given(st.lists(public_ids | st.text(), max_size=20), keys)
def test_a_batch_of_link_signatures_is_each_signed_alone(payloads: list[str], key: str) -> None:
    unsubscribe, manage = link_signatures([key], [p.encode() for p in payloads])
    assert [f"{p}.{u}" for p, u in zip(payloads, unsubscribe, strict=True)] == [
        make_token([key], UNSUBSCRIBE, p, NOW) for p in payloads
    ]
    assert [f"{p}.{m}" for p, m in zip(payloads, manage, strict=True)] == [
        make_token([key], MANAGE, p, NOW) for p in payloads
    ]


@given(st.lists(public_ids | st.text(), max_size=20), keys, st.sampled_from([MANAGE, UNSUBSCRIBE]))
def test_minting_many_at_once_is_minting_each(payloads: list[str], key: str, purpose: str) -> None:
    assert minter((key,), purpose).many(payloads) == [
        make_token([key], purpose, p, NOW) for p in payloads
    ]


@given(public_ids, st.sampled_from([CONFIRM, MANAGE, UNSUBSCRIBE]), st.data())
def test_any_changed_character_is_rejected(
    public_id: str, purpose: str, data: st.DataObject
) -> None:
    token = make_token(KEYS, purpose, public_id, NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from([c for c in "AZaz09-_." if c != token[index]]))
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(TokenError):
        read_token(KEYS, purpose, tampered, NOW, max_age_s=DAY)


@given(public_ids, st.permutations([CONFIRM, MANAGE, UNSUBSCRIBE]))
def test_a_token_for_one_purpose_does_nothing_for_another(public_id: str, order: list[str]) -> None:
    made_for, read_as = order[0], order[1]
    token = make_token(KEYS, made_for, public_id, NOW)
    with pytest.raises(TokenError):
        read_token(KEYS, read_as, token, NOW, max_age_s=DAY)


@given(public_ids)
def test_a_token_signed_with_an_older_key_still_works_after_rotation(public_id: str) -> None:
    old = make_token(["the-old-key"], UNSUBSCRIBE, public_id, NOW)
    assert read_token(["the-new-key", "the-old-key"], UNSUBSCRIBE, old, NOW) == public_id


@given(public_ids)
def test_the_newest_key_signs(public_id: str) -> None:
    token = make_token(["the-new-key", "the-old-key"], MANAGE, public_id, NOW)
    assert read_token(["the-new-key"], MANAGE, token, NOW) == public_id


@given(public_ids)
def test_a_token_from_a_retired_key_is_rejected(public_id: str) -> None:
    token = make_token(["retired-key"], UNSUBSCRIBE, public_id, NOW)
    with pytest.raises(TokenError):
        read_token(["current-key"], UNSUBSCRIBE, token, NOW)


@given(public_ids, st.integers(min_value=0, max_value=30 * 365))
def test_unsubscribe_links_keep_working_for_years(public_id: str, days: int) -> None:
    token = make_token(KEYS, UNSUBSCRIBE, public_id, NOW)
    later = NOW + timedelta(days=days)
    assert read_token(KEYS, UNSUBSCRIBE, token, later) == public_id


@given(st.integers(min_value=0, max_value=72 * 3600))
def test_a_confirm_token_works_within_its_lifetime(age_s: int) -> None:
    token = make_confirm_token(KEYS, "a" * 32, "n0nce", NOW)
    later = NOW + timedelta(seconds=age_s)
    assert read_confirm_token(KEYS, token, later, 72 * 3600) == ("a" * 32, "n0nce")


@given(st.integers(min_value=72 * 3600 + 1, max_value=10 * 365 * DAY))
def test_a_confirm_token_expires_after_72_hours(age_s: int) -> None:
    token = make_confirm_token(KEYS, "a" * 32, "n0nce", NOW)
    with pytest.raises(TokenExpired):
        read_confirm_token(KEYS, token, NOW + timedelta(seconds=age_s), 72 * 3600)


def test_a_confirm_token_from_the_future_is_rejected() -> None:
    token = make_confirm_token(KEYS, "a" * 32, "n0nce", NOW + timedelta(hours=1))
    with pytest.raises(TokenError):
        read_confirm_token(KEYS, token, NOW, 72 * 3600)


@settings(max_examples=300)
@given(st.text(max_size=300), st.sampled_from([CONFIRM, MANAGE, UNSUBSCRIBE]))
def test_arbitrary_text_is_a_token_error_never_a_crash(text: str, purpose: str) -> None:
    with pytest.raises(TokenError):
        read_token(KEYS, purpose, text, NOW, max_age_s=DAY)


def test_tokens_carry_the_public_id_and_never_an_address() -> None:
    token = make_token(KEYS, UNSUBSCRIBE, "0123abcd" * 4, NOW)
    assert token.startswith("0123abcd" * 4 + ".")
    assert "@" not in token


def test_tokens_are_url_safe() -> None:
    for purpose in (MANAGE, UNSUBSCRIBE):
        token = make_token(KEYS, purpose, "f" * 32, NOW)
        assert set(token) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
        )
    confirm = make_confirm_token(KEYS, "f" * 32, "abc", NOW)
    assert "/" not in confirm and "+" not in confirm and "=" not in confirm


def test_an_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown token purpose"):
        make_token(KEYS, "login", "x", NOW)


def test_signing_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="no signing key"):
        make_token([], UNSUBSCRIBE, "x", NOW)
