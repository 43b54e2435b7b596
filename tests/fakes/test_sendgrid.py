"""The fake SendGrid's shortcuts stay faithful: the whole-array check of a request's limits never
accepts what the per-personalization loop refuses, and pausing the garbage collector while
parsing changes nothing but speed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.sendgrid import parse
from tests.fakes.sendgrid_limits import (
    MAX_ARGS_BYTES,
    _personalization_errors,
    _within_limits,
    check_limits,
)

_local = st.sampled_from(["a", "b", "user1", "User1", "x.y", "", "a b", "é", "a@b"])
_domain = st.sampled_from(["example.com", "EXAMPLE.com", "b", "b.", "x.co", "ex ample.com"])
_address = st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain) | st.sampled_from(
    ["plain", "a@b@c.d", "trailing@x.com\n", "@x.com"]
)
_text = st.one_of(
    st.text(max_size=20),
    st.integers(0, 3).map(lambda n: "y" * (MAX_ARGS_BYTES // 4 + n)),
    st.integers(-2, 2).map(lambda n: "y" * (MAX_ARGS_BYTES + n)),
    st.just("é" * (MAX_ARGS_BYTES // 2)),
)
_values = st.dictionaries(st.sampled_from(["edition", "delivery", "%%x%%"]), _text, max_size=2)
_header_name = st.sampled_from(["List-Unsubscribe", "X-Thing", "Subject", "cc", "To"])
_personalization = st.fixed_dictionaries(
    {"to": st.lists(st.fixed_dictionaries({"email": _address}), min_size=1, max_size=2)},
    optional={
        "cc": st.lists(st.fixed_dictionaries({"email": _address}), max_size=2),
        "custom_args": _values,
        "substitutions": _values,
        "headers": st.dictionaries(_header_name, st.just("v"), max_size=2),
    },
)


@settings(max_examples=400)
@given(
    people=st.lists(_personalization, min_size=1, max_size=4),
    invalid=st.sets(st.sampled_from(["a@example.com", "user1@example.com"]), max_size=2),
)
def test_the_shortcut_never_accepts_what_the_loop_refuses(
    people: list[dict[str, Any]], invalid: set[str]
) -> None:
    errors: list[dict[str, Any]] = []
    _personalization_errors(people, invalid, errors)
    if _within_limits(people, invalid):
        assert errors == []


def test_the_shortcut_takes_a_full_request_of_good_personalizations() -> None:
    people = [
        {
            "to": [{"email": f"user{i}@bench.example"}],
            "substitutions": {"%%unsubscribe_url%%": "https://n.example/u/" + "t" * 90},
            "headers": {"List-Unsubscribe": "<https://n.example/u/t>"},
            "custom_args": {"edition": "1", "delivery": str(i)},
        }
        for i in range(1000)
    ]
    assert _within_limits(people, set())
    body = {"subject": "s", "content": [{"type": "text/plain", "value": "v"}]}
    assert check_limits({**body, "personalizations": people}) == []
    people[500]["to"][0]["email"] = "USER3@bench.example"  # user3 twice
    assert not _within_limits(people, set())
    errors = check_limits({**body, "personalizations": people})
    assert [e["field"] for e in errors] == ["personalizations.500.to.0.email"]
    assert "unique between to, cc, and bcc" in errors[0]["message"]


# Bounded (short strings, small containers, a dozen leaves) so that a document never comes near
# Hypothesis's entropy limit: JSON's shapes, not its size, are what the parser has to get right.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_json)
def test_parsing_without_the_collector_reads_the_same(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert parse(raw) == json.loads(raw)
