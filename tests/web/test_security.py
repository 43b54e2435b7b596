"""The pieces that keep the pages safe: CSRF tokens, headers on every token page,
tokens kept out of access logs, and the transactional email's content."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.cli.serve import RedactTokens, redact
from digest.people.notify import build_batch, render_notice
from subscribers.optin import ALREADY_SUBSCRIBED, CONFIRMATION, Notice
from tests.subscribers_helpers import Web, csrf_token

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@given(
    st.sampled_from(["u", "manage", "confirm"]),
    st.from_regex(r"[A-Za-z0-9_.\-]{1,90}", fullmatch=True),
)
def test_access_logs_never_show_a_token(kind: str, token: str) -> None:
    assert redact(f"/{kind}/{token}") == f"/{kind}/[token]"
    assert redact(f"/{kind}/{token}/pause?m=x") == f"/{kind}/[token]/pause?m=x"


def test_other_paths_are_logged_as_they_are() -> None:
    assert redact("/subscribe?x=1") == "/subscribe?x=1"


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/u/abc.def", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "POST /u/[token] HTTP/1.1" 200'


def test_the_csp_allows_exactly_the_pages_own_stylesheet(web: Web) -> None:
    page = web.client.get("/subscribe")
    css = page.text.split("<style>")[1].split("</style>")[0]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in page.headers["content-security-policy"]
    assert page.text.count("<style>") == 1 and ' style="' not in page.text


@pytest.mark.parametrize("page", ["confirm", "manage"])
def test_token_pages_send_no_referrer_and_load_nothing_from_elsewhere(web: Web, page: str) -> None:
    done = web.confirm("headers@example.com")
    if page == "confirm":
        response = web.client.get(web.confirm_link())
    else:
        start = done.text.index('href="') + len('href="')
        response = web.client.get(web.path(done.text[start : done.text.index('"', start)]))
    assert response.status_code == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text and "<link" not in response.text
    assert " src=" not in response.text
    assert "http://" not in response.text.replace(web.url, "")


def test_a_csrf_token_expires(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    token = csrf_token(web.client.get("/subscribe").text)
    real = __import__("time").time
    monkeypatch.setattr("time.time", lambda: real() + 13 * 3600)
    response = web.client.post(
        "/subscribe", data={"email": "late@example.com", "csrf_token": token}
    )
    assert response.status_code == 403


def notice(kind: str) -> Notice:
    return Notice(kind, "reader@example.com", "f" * 32, "TOKEN", 7)


def test_the_confirmation_email_has_one_link_and_no_marketing(settings) -> None:
    mail = render_notice(settings, notice(CONFIRMATION))
    assert mail.text.count("/confirm/TOKEN") == 1
    assert "http://127.0.0.1:8000/confirm/TOKEN" in mail.html
    assert "ignore this email" in mail.text
    assert "%%unsubscribe_url%%" not in mail.html


def test_the_already_subscribed_note_links_to_the_preferences(settings) -> None:
    mail = render_notice(settings, notice(ALREADY_SUBSCRIBED))
    assert mail.subject == "You are already subscribed to The Weekly Round-up"
    assert "http://127.0.0.1:8000/manage/TOKEN" in mail.text


def test_confirmation_emails_can_come_from_their_own_address(settings) -> None:
    own = settings.model_copy(
        update={
            "subscribers": settings.subscribers.model_copy(update={"from_email": "c@x.example"})
        }
    )
    batch = build_batch(own, notice(CONFIRMATION))
    assert batch.from_email == "c@x.example" and batch.test
    assert batch.headers == {"Auto-Submitted": "auto-generated"}
    assert [r.email for r in batch.recipients] == ["reader@example.com"]


def test_the_webhook_sets_its_own_body_limit(web: Web) -> None:
    big = b"[" + b" " * 100_000 + b"]"
    assert web.client.post("/webhooks/sendgrid", content=big).status_code != 413
    assert web.client.post("/subscribe", content=big).status_code == 413


def test_a_staff_token_in_a_url_is_cut_from_the_access_log() -> None:
    token = "dgst_a9sIOCq9lrIc9OTSPW82f7Uc9ezTDiYrzCn74KXijpM"
    assert (
        redact(f"/api/editions?access_token={token}") == "/api/editions?access_token=dgst_[token]"
    )
