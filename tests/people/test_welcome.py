"""The welcome email ([subscribers] welcome_email, issue 13): rendered by the editions' pipeline,
sent once when someone confirms, from the newsletter's address with the reader's own links."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.backends.outbox import OutboxBackend
from digest.config import Settings
from digest.people.notify import Welcome, frequency, render_welcome, send_welcome, welcome_batch
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL
from subscribers.tokens import UNSUBSCRIBE, read_token
from tests.conftest import DEMO_NOW, TEST_SECRET
from tests.subscribers_helpers import Web, csrf_token, start_web, text_of

ADA = Welcome(7, "ada@example.com", "a" * 32, "Ada", ["Asia", "Europe"])


def test_it_says_what_how_often_and_which_sections(settings: Settings) -> None:
    mail = render_welcome(settings, ADA)
    assert mail.subject == "Welcome to The Weekly Round-up"
    words = " ".join(mail.text.split())
    assert "Welcome, Ada" in words
    assert "It arrives every week" in words
    assert "from your sections: Europe and Asia." in words  # in the newsletter's order
    for body in (mail.html, mail.text):
        assert MANAGE_URL in body and UNSUBSCRIBE_URL in body
        assert settings.publication.postal_address in " ".join(body.split())
    everyone = render_welcome(settings, Welcome(8, "b@example.com", "b" * 32, None, None))
    assert "from every section: Middle East, Europe, Asia" in " ".join(everyone.text.split())
    assert "Read the latest edition" not in mail.html  # no page to link yet: no dead link
    latest = "https://meridianreview.example/archive/2026-11-20"
    linked = render_welcome(settings, replace(ADA, latest_url=latest))
    assert f'href="{latest}"' in linked.html
    assert f"Read the latest edition: {latest}" in linked.text


@pytest.mark.parametrize(
    ("days", "said"),
    [(1, "every day"), (7, "every week"), (14, "every two weeks"), (10, "every 10 days")],
)
def test_how_often_comes_from_the_length_of_the_week(days: int, said: str) -> None:
    assert frequency(days) == said


def test_the_batch_carries_the_readers_own_unsubscribe_link(settings: Settings) -> None:
    batch = welcome_batch(settings, ADA)
    (recipient,) = batch.recipients
    assert batch.from_email == settings.newsletter.from_email and batch.test
    url = recipient.substitutions[UNSUBSCRIBE_URL]
    assert recipient.headers["List-Unsubscribe"] == f"<{url}>"
    assert recipient.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = url.rsplit("/", 1)[1]
    assert read_token([TEST_SECRET], UNSUBSCRIBE, token, DEMO_NOW) == ADA.public_id


def test_sent_through_the_backend_with_the_links_filled_in(settings: Settings) -> None:
    assert send_welcome(settings, ADA, OutboxBackend(settings.outbox_path))
    (path,) = settings.outbox_path.rglob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == ADA.email and "%%" not in path.read_text()
    assert message["List-Unsubscribe"].startswith(f"<{settings.web.base_url}/u/")


@pytest.fixture(params=[True, False], ids=["welcome_email", "no_welcome_email"])
def site(request: pytest.FixtureRequest, tmp_path: Path, db_path: Path) -> Iterator[Web]:
    running, live = start_web(tmp_path, db_path, subscribers={"welcome_email": request.param})
    try:
        yield running
    finally:
        live.stop()
        running.close()


def welcomes(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if m["Subject"] == "Welcome to The Weekly Round-up"]


def test_confirming_sends_one_welcome_when_it_is_on(site: Web) -> None:
    site.subscribe("new.reader@example.com", sections=["Asia"])
    target = site.confirm_link()
    token = csrf_token(site.client.get(target).text)
    assert site.client.post(target, data={"csrf_token": token}).status_code == 200
    sent = welcomes(site.messages())
    if not site.settings.subscribers.welcome_email:
        assert sent == []
        return
    (welcome,) = sent
    assert welcome["To"] == "new.reader@example.com"
    assert "from your section: Asia." in " ".join(text_of(welcome).split())
    # The link works once: confirming again sends no second welcome.
    site.client.post(target, data={"csrf_token": token})
    assert len(welcomes(site.messages())) == 1
