"""The subscriber lifecycle: double opt-in, preferences, leaving, erasure, and who gets mail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from subscribers.consent import Evidence
from subscribers.errors import InvalidPause, InvalidSections, Suppressed
from subscribers.lifecycle import (
    ALREADY_CONFIRMED,
    ALREADY_SUBSCRIBED,
    CONFIRMATION,
    CONFIRMED,
    EXPIRED,
    INVALID,
    Notice,
    Policy,
    add_confirmed,
    check_confirmation,
    confirm,
    erase,
    find_by_email,
    is_suppressed,
    pause,
    pending_emails,
    purge_pending,
    recipients_for,
    resend_confirmation,
    resubscribe,
    resume,
    set_sections,
    subscribe,
    suppress,
    unsubscribe,
)
from subscribers.models import (
    ACTIVE,
    PENDING,
    UNSUBSCRIBED,
    ConfirmationSend,
    Consent,
    Subscriber,
    Suppression,
)
from subscribers.ratelimit import ConfirmationLimits
from tests.conftest import TEST_SECRET
from tests.subscribers_helpers import SECTIONS

KEYS = [TEST_SECRET]
POLICY = Policy(sections=SECTIONS)
FORM = Evidence("subscribe form", ip="203.0.113.7", user_agent="Firefox", consent_text_version="3")
CLICK = Evidence("confirmation link", ip="203.0.113.8", user_agent="Safari")


def sign_up(session: Session, address: str, now: datetime, **kw: object) -> Notice | None:
    return subscribe(session, address, evidence=FORM, now=now, keys=KEYS, policy=POLICY, **kw)  # type: ignore[arg-type]


def active(session: Session, address: str, now: datetime, **kw: object) -> Subscriber:
    notice = sign_up(session, address, now, **kw)
    assert notice is not None
    result = confirm(session, notice.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert result.state == CONFIRMED and result.subscriber is not None
    return result.subscriber


def audience(session: Session, now: datetime, sections: tuple[str, ...] = SECTIONS) -> set[str]:
    return {a.email for a in recipients_for(session, sections, now)}


def test_subscribing_makes_a_pending_subscriber_and_one_confirmation(session, now) -> None:
    notice = sign_up(session, " New.Reader@Example.com ", now)
    sub = find_by_email(session, "new.reader@example.com")
    assert notice is not None and notice.kind == CONFIRMATION
    assert notice.email == "new.reader@example.com"
    assert sub is not None and sub.status == PENDING and sub.confirmed_at is None
    assert session.scalar(select(func.count()).select_from(ConfirmationSend)) == 1


def test_a_pending_subscriber_is_never_mailed(session, now) -> None:
    sign_up(session, "pending@example.com", now)
    assert audience(session, now) == set()


def test_the_subscribe_event_keeps_the_evidence(session, now) -> None:
    sign_up(session, "evidence@example.com", now, sections=["Europe"])
    event = session.scalars(select(Consent)).one()
    assert (event.event, event.source, event.ip, event.user_agent) == (
        "subscribe",
        "subscribe form",
        "203.0.113.7",
        "Firefox",
    )
    assert event.consent_text_version == "3" and event.at == now
    assert event.detail == {"sections": ["Europe"], "previous_status": None}


def test_confirming_makes_the_subscriber_active_and_mailable(session, now) -> None:
    sub = active(session, "reader@example.com", now)
    assert sub.status == ACTIVE and sub.confirmed_at == now
    assert audience(session, now) == {"reader@example.com"}
    assert [c.event for c in sub.consents] == ["subscribe", "confirm"]
    assert sub.consents[1].ip == "203.0.113.8"


def test_a_confirmation_link_works_once(session, now) -> None:
    notice = sign_up(session, "once@example.com", now)
    assert notice is not None
    confirm(session, notice.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    again = confirm(session, notice.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert again.state == ALREADY_CONFIRMED
    assert len(find_by_email(session, "once@example.com").consents) == 2  # type: ignore[union-attr]


def test_a_confirmation_link_expires_after_72_hours(session, now) -> None:
    notice = sign_up(session, "late@example.com", now)
    assert notice is not None
    later = now + timedelta(hours=72, seconds=1)
    result = confirm(session, notice.token, evidence=CLICK, now=later, keys=KEYS, policy=POLICY)
    assert result.state == EXPIRED
    assert find_by_email(session, "late@example.com").status == PENDING  # type: ignore[union-attr]


def test_a_used_link_cannot_bring_back_someone_who_left(session, now) -> None:
    notice = sign_up(session, "left@example.com", now)
    assert notice is not None
    sub = confirm(session, notice.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    unsubscribe(session, sub.subscriber, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)  # type: ignore[arg-type]
    result = confirm(session, notice.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert result.state == INVALID
    assert audience(session, now) == set()


def test_a_garbled_confirmation_link_is_invalid(session, now) -> None:
    result = check_confirmation(session, "not-a-token", now=now, keys=KEYS, policy=POLICY)
    assert result.state == INVALID


def test_a_second_request_within_the_interval_sends_nothing(session, now) -> None:
    assert sign_up(session, "twice@example.com", now) is not None
    assert sign_up(session, "twice@example.com", now + timedelta(minutes=9)) is None
    assert sign_up(session, "twice@example.com", now + timedelta(minutes=10)) is not None


def test_an_address_gets_at_most_three_confirmations_a_day(session, now) -> None:
    sent = [
        sign_up(session, "bombed@example.com", now + timedelta(minutes=11 * i)) for i in range(6)
    ]
    assert sum(n is not None for n in sent) == 3
    assert sign_up(session, "bombed@example.com", now + timedelta(hours=24, minutes=1)) is not None


def test_the_limits_count_per_address(session, now) -> None:
    assert sign_up(session, "one@example.com", now) is not None
    assert sign_up(session, "two@example.com", now) is not None


def test_every_link_sent_for_one_request_confirms(session, now) -> None:
    first = sign_up(session, "resend@example.com", now)
    second = resend_confirmation(
        session, "resend@example.com", now=now + timedelta(minutes=15), keys=KEYS, policy=POLICY
    )
    assert first is not None and second is not None
    result = confirm(session, first.token, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert result.state == CONFIRMED


def test_an_active_address_gets_a_link_to_its_preferences_instead(session, now) -> None:
    active(session, "known@example.com", now)
    notice = sign_up(session, "known@example.com", now + timedelta(hours=1))
    assert notice is not None and notice.kind == ALREADY_SUBSCRIBED
    assert find_by_email(session, "known@example.com").status == ACTIVE  # type: ignore[union-attr]


def test_resend_for_an_unknown_address_sends_nothing(session, now) -> None:
    assert (
        resend_confirmation(session, "nobody@example.com", now=now, keys=KEYS, policy=POLICY)
        is None
    )


def test_pending_emails_are_the_addresses_still_waiting_for_their_confirmation(
    session, now
) -> None:
    sign_up(session, "waiting@example.com", now)
    active(session, "done@example.com", now)
    left = active(session, "left@example.com", now)
    unsubscribe(session, left, evidence=FORM, now=now, keys=KEYS, policy=POLICY)
    assert pending_emails(session) == ["waiting@example.com"]


def test_a_notice_never_shows_the_address_in_its_repr(session, now) -> None:
    notice = sign_up(session, "private@example.com", now)
    assert "private@example.com" not in repr(notice)
    assert notice is not None and notice.token not in repr(notice)


def test_sections_default_to_all_and_unknown_ones_are_refused(session, now) -> None:
    sign_up(session, "all@example.com", now)
    assert find_by_email(session, "all@example.com").sections is None  # type: ignore[union-attr]
    with pytest.raises(InvalidSections, match="'Sport'"):
        sign_up(session, "sport@example.com", now, sections=["Sport"])


def test_recipients_get_the_intersection_of_their_sections(session, now) -> None:
    active(session, "europe@example.com", now, sections=["Europe", "Asia"])
    found = {a.email: a.sections for a in recipients_for(session, ["Europe", "Diplomacy"], now)}
    assert found == {"europe@example.com": ("Europe",)}


def test_someone_without_any_of_the_sections_is_not_a_recipient(session, now) -> None:
    active(session, "asia@example.com", now, sections=["Asia"])
    assert audience(session, now, ("Europe",)) == set()


def test_unsubscribing_from_one_section_keeps_the_others(session, now) -> None:
    sub = active(session, "two@example.com", now, sections=["Europe", "Asia"])
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY, section="Asia")
    assert sub.sections == ["Europe"] and sub.status == ACTIVE
    assert audience(session, now, ("Asia",)) == set()


def test_unsubscribing_from_the_last_section_is_leaving(session, now) -> None:
    sub = active(session, "last@example.com", now, sections=["Asia"])
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY, section="Asia")
    assert sub.status == UNSUBSCRIBED


def test_unsubscribing_from_one_section_of_all_lists_the_rest(session, now) -> None:
    sub = active(session, "many@example.com", now)
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY, section="Asia")
    assert sub.sections == [s for s in SECTIONS if s != "Asia"]


def test_unsubscribing_stops_mail_at_once_and_suppresses(session, now) -> None:
    sub = active(session, "bye@example.com", now)
    changed = unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert changed and sub.status == UNSUBSCRIBED and sub.unsubscribed_at == now
    assert audience(session, now) == set()
    assert is_suppressed(session, "bye@example.com", KEYS)


def test_unsubscribing_twice_changes_nothing_the_second_time(session, now) -> None:
    sub = active(session, "idem@example.com", now)
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    again = unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert not again
    assert [c.event for c in sub.consents] == ["subscribe", "confirm", "unsubscribe"]
    assert session.scalar(select(func.count()).select_from(Suppression)) == 1


def test_resubscribing_needs_a_new_confirmation(session, now) -> None:
    sub = active(session, "back@example.com", now)
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    later = now + timedelta(days=3)
    notice = resubscribe(session, sub, evidence=FORM, now=later, keys=KEYS, policy=POLICY)
    assert notice is not None and notice.kind == CONFIRMATION
    assert sub.status == UNSUBSCRIBED and audience(session, later) == set()
    confirm(session, notice.token, evidence=CLICK, now=later, keys=KEYS, policy=POLICY)
    assert sub.status == ACTIVE and not is_suppressed(session, sub.email, KEYS)
    assert audience(session, later) == {"back@example.com"}


def test_the_form_also_brings_back_someone_who_left_after_confirmation(session, now) -> None:
    sub = active(session, "form-back@example.com", now)
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    notice = sign_up(session, "form-back@example.com", now + timedelta(days=1))
    assert notice is not None and notice.kind == CONFIRMATION
    assert sub.status == UNSUBSCRIBED


def test_a_pause_skips_editions_until_it_ends(session, now) -> None:
    sub = active(session, "break@example.com", now)
    until = pause(sub, 2, evidence=CLICK, now=now, policy=POLICY)
    assert until == now + timedelta(weeks=2)
    assert audience(session, now + timedelta(days=13)) == set()
    assert audience(session, now + timedelta(weeks=2)) == {"break@example.com"}


def test_resuming_ends_a_pause(session, now) -> None:
    sub = active(session, "resume@example.com", now)
    pause(sub, 4, evidence=CLICK, now=now, policy=POLICY)
    assert resume(sub, evidence=CLICK, now=now)
    assert audience(session, now) == {"resume@example.com"}


@pytest.mark.parametrize("weeks", [0, -1, 13])
def test_a_pause_outside_the_allowed_range_is_refused(session, now, weeks: int) -> None:
    sub = active(session, "range@example.com", now)
    with pytest.raises(InvalidPause, match="1 to 12 weeks"):
        pause(sub, weeks, evidence=CLICK, now=now, policy=POLICY)


def test_choosing_sections_records_before_and_after(session, now) -> None:
    sub = active(session, "prefs@example.com", now)
    assert set_sections(sub, ["Asia", "Europe"], evidence=CLICK, now=now, policy=POLICY)
    assert sub.sections == ["Europe", "Asia"]  # the newsletter's order
    assert sub.consents[-1].detail == {"before": None, "sections": ["Europe", "Asia"]}


def test_choosing_every_section_means_all_including_new_ones(session, now) -> None:
    sub = active(session, "every@example.com", now, sections=["Asia"])
    set_sections(sub, list(SECTIONS), evidence=CLICK, now=now, policy=POLICY)
    assert sub.sections is None


def test_choosing_no_section_is_refused(session, now) -> None:
    sub = active(session, "none@example.com", now)
    with pytest.raises(InvalidSections, match="at least one section"):
        set_sections(sub, [], evidence=CLICK, now=now, policy=POLICY)


def test_erasing_keeps_only_the_keyed_hash(session, now) -> None:
    sub = active(session, "forget@example.com", now)
    digest_hash = erase(session, sub, now=now, keys=KEYS)
    assert find_by_email(session, "forget@example.com") is None
    assert session.scalar(select(func.count()).select_from(Consent)) == 0
    entry = session.scalars(select(Suppression)).one()
    assert (entry.email_hash, entry.reason) == (digest_hash, "erased")
    assert "forget" not in digest_hash


def test_an_operator_cannot_add_back_a_suppressed_address(session, now) -> None:
    sub = active(session, "gone@example.com", now)
    erase(session, sub, now=now, keys=KEYS)
    with pytest.raises(Suppressed, match="suppression list"):
        add_confirmed(session, "gone@example.com", evidence=FORM, now=now, keys=KEYS, policy=POLICY)


def test_an_erased_person_can_come_back_through_double_opt_in(session, now) -> None:
    sub = active(session, "return@example.com", now)
    erase(session, sub, now=now, keys=KEYS)
    back = active(session, "return@example.com", now + timedelta(days=30))
    assert back.status == ACTIVE and not is_suppressed(session, "return@example.com", KEYS)


def test_an_operator_add_with_evidence_is_active(session, now) -> None:
    evidence = Evidence("signed paper form, 2026-11 conference")
    assert add_confirmed(
        session, "paper@example.com", evidence=evidence, now=now, keys=KEYS, policy=POLICY
    )
    sub = find_by_email(session, "paper@example.com")
    assert sub is not None and sub.status == ACTIVE
    assert sub.consents[0].source == "signed paper form, 2026-11 conference"


def test_suppression_survives_key_rotation(session, now) -> None:
    sub = active(session, "rotate@example.com", now)
    unsubscribe(session, sub, evidence=CLICK, now=now, keys=KEYS, policy=POLICY)
    assert is_suppressed(session, "rotate@example.com", ["a-brand-new-key", *KEYS])


def test_suppress_for_a_bounce_stops_mail_and_closes_open_links(session, now) -> None:
    sub = active(session, "bounce@example.com", now)
    suppress(session, sub, "bounced", now=now, keys=KEYS, source="sendgrid webhook")
    assert sub.status == "bounced" and audience(session, now) == set()
    assert sub.consents[-1].source == "sendgrid webhook"


def test_unconfirmed_requests_expire(session, now) -> None:
    sign_up(session, "old@example.com", now)
    sign_up(session, "fresh@example.com", now + timedelta(days=6))
    active(session, "kept@example.com", now)
    removed = purge_pending(session, now=now + timedelta(days=7, seconds=1), policy=POLICY)
    assert removed == 1
    assert find_by_email(session, "old@example.com") is None
    assert find_by_email(session, "fresh@example.com") is not None


def test_the_limits_are_configurable(session, now) -> None:
    strict = Policy(SECTIONS, limits=ConfirmationLimits(timedelta(hours=1), daily_cap=1))
    first = subscribe(session, "a@example.com", evidence=FORM, now=now, keys=KEYS, policy=strict)
    later = now + timedelta(hours=2)
    second = subscribe(session, "a@example.com", evidence=FORM, now=later, keys=KEYS, policy=strict)
    assert first is not None and second is None
