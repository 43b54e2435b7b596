"""Address validation: email-validator's verdicts, the cached fast path held to them."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError
from email_validator import validate_email as reference
from hypothesis import example, given, settings
from hypothesis import strategies as st

from subscribers.addresses import normalise_email, validate_email
from subscribers.errors import InvalidEmail

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
local_parts = st.lists(st.text(ATEXT, min_size=1, max_size=12), min_size=1, max_size=4).map(
    ".".join
) | st.text(ATEXT + '."\\ @é', max_size=70)
labels = st.text("abcxyz09-", min_size=1, max_size=15)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["example.com", "bücher.de", "localhost", "x.invalid", "[127.0.0.1]", "a..b", "-a.com", "é.fr"]
)


def reference_answer(address: str) -> str | None:
    """email-validator on the trimmed text (we trim what people paste, it does not)."""
    try:
        found = reference(address.strip(), check_deliverability=False)
        return normalise_email(str(found.normalized))
    except EmailNotValidError:
        return None


def ours(address: str) -> str | None:
    try:
        return validate_email(address)
    except InvalidEmail:
        return None


@settings(max_examples=400)
@given(local_parts, domains)
@example("a" * 64, "example.com")
@example("a" * 65, "example.com")
@example("a" * 64, ("b" * 60 + ".") * 3 + "com")
@example("Bob.Smith", "Example.COM")
def test_the_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert ours(address) == reference_answer(address)


@given(st.text(max_size=100))
def test_any_text_is_either_an_address_or_an_invalid_email_error(text: str) -> None:
    result = ours(text)
    assert result is None or "@" in result


@given(local_parts, domains)
def test_normalising_twice_changes_nothing(local: str, domain: str) -> None:
    first = ours(f"{local}@{domain}")
    if first is not None:
        assert validate_email(first) == first


def test_addresses_are_trimmed_and_lower_cased() -> None:
    assert validate_email("  Amara.Okafor@Example.COM \n") == "amara.okafor@example.com"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("no-at-sign.example.com", "@-sign"),
        ("two@@example.com", "@"),
        ("someone@localhost", "period"),
        ("someone@example.invalid", "special-use"),
        ("Bob <bob@example.com>", "display name"),
        ("bob@example..com", "period"),
    ],
)
def test_invalid_addresses_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidEmail) as exc:
        validate_email(text)
    assert reason in str(exc.value).lower()


def test_international_domains_are_kept_in_unicode() -> None:
    assert validate_email("leser@Bücher.de") == "leser@bücher.de"
