"""The consent-text rule the subscribe form and the JSON API share (subscribers/consent.py)."""

from __future__ import annotations

import pytest

from subscribers.consent import check_consent_version
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
