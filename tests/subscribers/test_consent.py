"""Consent rules every face shares (subscribers/consent.py): the consent text version, and the
evidence an operator must give for someone added as confirmed."""

from __future__ import annotations

import pytest

from subscribers.consent import check_consent_version, operator_evidence
from subscribers.errors import StaleConsentText, SubscriberError


def test_the_current_version_is_accepted() -> None:
    check_consent_version("3", "3")


def test_no_version_at_all_is_recorded_under_the_current_text() -> None:
    check_consent_version(None, "3")


@pytest.mark.parametrize("shown", ["2", "", "3 "])
def test_any_other_version_is_refused_naming_both(shown: str) -> None:
    with pytest.raises(StaleConsentText) as caught:
        check_consent_version(shown, "3")
    assert (caught.value.shown, caught.value.current) == (shown, "3")
    assert str(caught.value) == f"version {shown!r} is not the current consent text ('3')"
    assert isinstance(caught.value, SubscriberError)  # the CLI's one-line error, if it met one


@pytest.mark.parametrize("source", [None, "", "   "])
def test_an_operator_adding_someone_confirmed_must_say_where_they_opted_in(
    source: str | None,
) -> None:
    with pytest.raises(SubscriberError, match="--confirmed needs --source"):
        operator_evidence(source)


def test_operator_evidence_names_the_source_and_the_operator() -> None:
    assert operator_evidence(" the 2025 reader survey ").source == (
        "the 2025 reader survey (added by an operator)"
    )
