"""Subscribing on the web: the form (CSRF, honeypot), the JSON API, rate limits, the same
answer for every address, and the confirmation page whose button POSTs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from digest.backends.base import Batch, EmailBackend, RecipientStatus
from digest.errors import ConfigError
from digest.web.app import create_app
from subscribers.lifecycle import find_by_email
from subscribers.models import ACTIVE, PENDING, Consent, ConsentText, Subscriber
from tests.subscribers_helpers import (
    Clock,
    LiveServer,
    Web,
    bound_socket,
    csrf_token,
    link,
    start_web,
    text_of,
    web_settings,
)


def count(web: Web) -> int:
    with web.session() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


@pytest.fixture
def strict_web(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """An app allowing three subscribe requests per IP."""
    running, live = start_web(
        tmp_path, db_path, web={"subscribe_ip_limit": 3, "subscribe_ip_window_minutes": 60}
    )
    yield running
    live.stop()
    running.close()


def test_the_form_has_csrf_a_honeypot_the_sections_and_the_consent_text(web: Web) -> None:
    page = web.client.get("/subscribe")
    assert page.status_code == 200
    assert csrf_token(page.text) and "digest_csrf" in page.headers["set-cookie"]
    assert 'name="website"' in page.text and 'tabindex="-1"' in page.text
    assert all(f'value="{s}" checked' in page.text for s in web.settings.newsletter.sections)
    assert web.settings.subscribers.consent_text in page.text


def test_the_csrf_cookie_is_httponly_and_same_site_strict(web: Web) -> None:
    cookie = web.client.get("/subscribe").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_subscribing_sends_exactly_one_confirmation_email(web: Web) -> None:
    response = web.subscribe("New.Reader@Example.com")
    assert response.status_code == 303
    assert response.headers["location"] == f"{web.url}/subscribe/check-inbox"
    (message,) = web.messages()
    assert message["To"] == "new.reader@example.com"
    assert message["Subject"] == "Confirm your subscription to The Weekly Round-up"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert link(message, "/confirm/").startswith(f"{web.url}/confirm/")
    assert "72 hours" in text_of(message)


def test_the_confirmation_email_has_html_with_the_same_link(web: Web) -> None:
    web.subscribe("html@example.com")
    (message,) = web.messages()
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert link(message, "/confirm/") in html
    assert "Confirm my subscription" in html


def test_the_answer_is_the_same_for_a_known_address(web: Web) -> None:
    web.confirm("known@example.com")
    web.clock.advance(minutes=11)  # past the per-address interval of the confirmation
    new = web.subscribe("unknown@example.com")
    known = web.subscribe("known@example.com")
    assert (new.status_code, new.headers["location"]) == (
        known.status_code,
        known.headers["location"],
    )
    notice = web.messages()[-1]
    assert notice["Subject"] == "You are already subscribed to The Weekly Round-up"
    assert link(notice, "/manage/").startswith(f"{web.url}/manage/")


def test_a_repeat_request_gets_the_same_answer_and_no_second_email(web: Web) -> None:
    first = web.subscribe("repeat@example.com")
    second = web.subscribe("repeat@example.com")
    assert first.headers["location"] == second.headers["location"]
    assert len(web.messages()) == 1


def test_without_a_csrf_token_nothing_happens(web: Web) -> None:
    response = web.client.post("/subscribe", data={"email": "x@example.com", "sections": "Asia"})
    assert response.status_code == 403 and "Reload the page" in response.text
    assert count(web) == 0


def test_a_csrf_token_from_another_browser_is_refused(web: Web) -> None:
    token = csrf_token(web.client.get("/subscribe").text)
    web.client.cookies.clear()
    web.client.cookies.set("digest_csrf", "0" * 32)
    response = web.client.post("/subscribe", data={"email": "x@example.com", "csrf_token": token})
    assert response.status_code == 403 and count(web) == 0


def test_the_honeypot_answers_like_success_and_does_nothing(web: Web) -> None:
    response = web.subscribe("bot@example.com", website="http://spam.example")
    assert response.status_code == 303
    assert response.headers["location"] == f"{web.url}/subscribe/check-inbox"
    assert count(web) == 0 and web.messages() == []


def test_a_malformed_address_is_explained_and_the_form_kept(web: Web) -> None:
    response = web.subscribe("not an address", name="Ann")
    assert response.status_code == 400
    assert "An email address must have an @-sign." in response.text
    assert 'value="Ann"' in response.text
    assert count(web) == 0


def test_no_section_ticked_is_explained(web: Web) -> None:
    response = web.subscribe("none@example.com", sections=[])
    assert response.status_code == 400 and "Choose at least one section" in response.text


def test_an_outdated_consent_text_is_shown_again(web: Web) -> None:
    response = web.subscribe("old@example.com", consent_text_version="0")
    assert response.status_code == 409 and "read them again" in response.text
    assert count(web) == 0


def test_the_per_ip_limit_answers_429_with_retry_after(strict_web: Web) -> None:
    answers = [strict_web.subscribe(f"ip{i}@example.com").status_code for i in range(4)]
    assert answers == [303, 303, 303, 429]
    limited = strict_web.subscribe("ip9@example.com")
    assert int(limited.headers["retry-after"]) > 0


def test_the_per_ip_limit_refills_over_time(strict_web: Web) -> None:
    for i in range(3):
        strict_web.subscribe(f"r{i}@example.com")
    strict_web.clock.advance(minutes=20)
    assert strict_web.subscribe("r9@example.com").status_code == 303


def test_the_subscribe_and_confirm_events_keep_ip_user_agent_and_consent_version(web: Web) -> None:
    web.client.headers["User-Agent"] = "Test Browser 1.0"
    web.confirm("proof@example.com")
    with web.session() as session:
        events = session.scalars(select(Consent).order_by(Consent.id)).all()
        texts = session.scalars(select(ConsentText)).all()
    assert [(e.event, e.source) for e in events] == [
        ("subscribe", "subscribe form"),
        ("confirm", "confirmation link"),
    ]
    assert all(e.ip == "127.0.0.1" and e.user_agent == "Test Browser 1.0" for e in events)
    version = web.settings.subscribers.consent_text_version
    assert all(e.consent_text_version == version for e in events)
    assert [(t.version, t.text) for t in texts] == [
        (version, web.settings.subscribers.consent_text)
    ]


def test_the_confirm_link_shows_a_button_and_confirms_only_on_post(web: Web) -> None:
    web.subscribe("scan@example.com")
    target = web.confirm_link()
    page = web.client.get(target)
    assert page.status_code == 200 and f'action="{target}"' in page.text
    web.client.get(target)  # a link scanner, twice
    with web.session() as session:
        assert find_by_email(session, "scan@example.com").status == PENDING  # type: ignore[union-attr]
    done = web.client.post(target, data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    with web.session() as session:
        assert find_by_email(session, "scan@example.com").status == ACTIVE  # type: ignore[union-attr]


def test_a_used_confirm_link_hands_out_no_preferences_link(web: Web) -> None:
    """Issue 19: an old confirmation email (forwarded, in a shared inbox) must not give
    whoever holds it the right to change or end the subscription; it offers a link by email."""
    web.confirm("used@example.com")
    target = web.confirm_link()
    page = web.client.get(target)
    assert "You are already subscribed" in page.text
    assert "/manage/" not in page.text and 'action="/resend"' in page.text
    again = web.client.post(target, data={"csrf_token": csrf_token(page.text)})
    assert "You are already subscribed" in again.text and "/manage/" not in again.text


def test_an_expired_confirm_link_offers_a_new_one(web: Web) -> None:
    web.subscribe("slow@example.com")
    web.clock.advance(hours=73)
    page = web.client.get(web.confirm_link())
    assert page.status_code == 410 and "has expired" in page.text
    assert 'action="/resend"' in page.text


def test_a_garbled_confirm_link_is_not_valid(web: Web) -> None:
    page = web.client.get("/confirm/nonsense")
    assert page.status_code == 404 and "not valid" in page.text


def test_confirming_without_csrf_does_nothing(web: Web) -> None:
    web.subscribe("csrf@example.com")
    assert web.client.post(web.confirm_link()).status_code == 403


def test_resend_mails_a_new_link_to_a_pending_address(web: Web) -> None:
    web.subscribe("again@example.com")
    web.clock.advance(minutes=11)
    token = csrf_token(web.client.get("/subscribe/check-inbox").text)
    response = web.client.post("/resend", data={"email": "again@example.com", "csrf_token": token})
    assert response.status_code == 303 and len(web.messages()) == 2


def test_resend_for_an_unknown_address_answers_the_same_and_sends_nothing(web: Web) -> None:
    token = csrf_token(web.client.get("/subscribe/check-inbox").text)
    response = web.client.post("/resend", data={"email": "ghost@example.com", "csrf_token": token})
    assert response.status_code == 303 and web.messages() == []


def test_the_json_api_accepts_and_answers_the_same_for_everyone(web: Web) -> None:
    web.confirm("json-known@example.com")
    new = web.client.post(
        "/api/subscribe", json={"email": "json@example.com", "sections": ["Asia"]}
    )
    known = web.client.post("/api/subscribe", json={"email": "json-known@example.com"})
    assert new.status_code == known.status_code == 202
    assert new.json() == known.json()
    with web.session() as session:
        sub = find_by_email(session, "json@example.com")
        assert sub is not None and sub.sections == ["Asia"]
        assert sub.consents[0].source == "JSON API"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "not-an-address"}, 422, "email"),
        ({"email": "a@example.com", "sections": ["Sport"]}, 422, "sections"),
        ({"email": "a@example.com", "colour": "red"}, 422, "colour"),
        ({"name": "No Email"}, 422, "email"),
        ({"email": "a@example.com", "consent_text_version": "0"}, 409, "consent_text_version"),
    ],
)
def test_the_json_api_names_the_field_it_refuses(
    web: Web, body: dict[str, object], status: int, field: str
) -> None:
    response = web.client.post("/api/subscribe", json=body)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert count(web) == 0


def test_the_json_api_wants_json(web: Web) -> None:
    response = web.client.post("/api/subscribe", data={"email": "form@example.com"})
    assert response.status_code == 415
    broken = web.client.post(
        "/api/subscribe", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]["message"]


def test_a_huge_body_is_refused_before_it_is_read(web: Web) -> None:
    response = web.client.post("/api/subscribe", json={"email": "a@example.com", "x": "y" * 70000})
    assert response.status_code == 413


def test_the_json_api_publishes_the_consent_text_to_show(web: Web) -> None:
    answer = web.client.get("/api/consent").json()
    assert answer["version"] == web.settings.subscribers.consent_text_version
    assert answer["sections"] == web.settings.newsletter.sections


def test_the_json_resend_answers_202(web: Web) -> None:
    response = web.client.post("/api/resend", json={"email": "nobody@example.com"})
    assert response.status_code == 202 and web.messages() == []


class RefusingBackend(EmailBackend):
    name = "refusing"

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        return [RecipientStatus(r.delivery_id, "rejected", reason="no") for r in batch.recipients]


def test_a_refused_email_changes_nothing_in_the_answer_and_logs_no_address(
    tmp_path: Path, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveServer(bound_socket())
    settings = web_settings(tmp_path, db_path, live.url)
    app = create_app(settings, clock=Clock(), backend=RefusingBackend())
    live.start(app)
    try:
        with caplog.at_level(logging.ERROR), httpx.Client(base_url=live.url) as client:
            page = client.get("/subscribe")
            response = client.post(
                "/subscribe",
                data={
                    "email": "refused@example.com",
                    "sections": ["Asia"],
                    "csrf_token": csrf_token(page.text),
                    "consent_text_version": settings.subscribers.consent_text_version,
                },
            )
            assert app.state.site.drain()  # the email is sent after the answer
        assert response.status_code == 303
        assert "refused: rejected: no" in caplog.text
        assert "refused@example.com" not in caplog.text
    finally:
        live.stop()


def test_a_changed_consent_text_under_an_old_version_stops_the_app(
    tmp_path: Path, db_path: Path
) -> None:
    first = web_settings(tmp_path, db_path, "http://127.0.0.1:9")
    create_app(first)
    same_version = {"consent_text_version": first.subscribers.consent_text_version}
    changed = web_settings(
        tmp_path,
        db_path,
        "http://127.0.0.1:9",
        subscribers={**same_version, "consent_text": "New words."},
    )
    with pytest.raises(ConfigError, match="consent_text_version"):
        create_app(changed)


def test_the_app_will_not_start_without_a_secret_key(tmp_path: Path, db_path: Path) -> None:
    settings = web_settings(tmp_path, db_path, "http://127.0.0.1:9", secret_key=None)
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY is not set"):
        create_app(settings)


def test_an_unknown_page_is_a_page_for_people_and_json_for_programs(web: Web) -> None:
    page = web.client.get("/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "Page not found" in page.text
    assert web.client.get("/nowhere").json() == {"detail": "Not Found"}
