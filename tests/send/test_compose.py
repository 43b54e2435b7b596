"""digest.send.compose: claimed ledger rows become one Batch: the variant's body, rendered once,
and each recipient's own links and List-Unsubscribe headers (RFC 2369, RFC 8058)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import personalise
from digest.config import Settings
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.render.email import Branding, EditionView, RenderedEmail, render_edition
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL
from digest.send import compose
from digest.send.claims import Claimed
from digest.send.compose import Composer, list_id
from subscribers.tokens import MANAGE, UNSUBSCRIBE, TokenError, read_token
from tests.send_helpers import SECTIONS, with_delivery

BASE = "http://127.0.0.1:8000"  # [web] base_url of the demo configuration
ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def view(factory: sessionmaker[Session], edition: int) -> EditionView:
    with factory() as session:
        return edition_view(get_edition(session, edition))


def _composer(settings: Settings, view: EditionView, now: datetime) -> Composer:
    return Composer(settings, view, now, settings.secret_keys())


def _rows(n: int, variant: str = "|".join(SECTIONS)) -> list[Claimed]:
    return [Claimed(100 + i, f"r{i}@example.com", variant, uuid.uuid4().hex) for i in range(n)]


def test_a_batch_carries_its_rows_in_order_with_the_editions_envelope(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    rows = _rows(3)
    batch = _composer(settings, view, now).batch(rows, "17")
    assert [(r.delivery_id, r.email) for r in batch.recipients] == [
        (100, "r0@example.com"),
        (101, "r1@example.com"),
        (102, "r2@example.com"),
    ]
    assert (batch.batch_id, batch.edition_id, batch.test) == ("17", view.id, False)
    assert batch.subject == view.subject
    assert (batch.from_email, batch.from_name, batch.reply_to) == (
        "roundup@meridianreview.example",
        "The Meridian Review",
        "editors@meridianreview.example",
    )
    assert dict(batch.headers) == {"List-Id": list_id(settings)}


def test_the_list_id_names_the_newsletter_under_the_senders_domain(settings: Settings) -> None:
    assert list_id(settings) == "The Weekly Round-up <the-weekly-round-up.meridianreview.example>"


def test_each_recipients_links_carry_tokens_for_that_subscriber_alone(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    rows = _rows(3)
    batch = _composer(settings, view, now).batch(rows, "1")
    keys = settings.secret_keys()
    for row, recipient in zip(rows, batch.recipients, strict=True):
        unsubscribe = recipient.substitutions[UNSUBSCRIBE_URL]
        manage = recipient.substitutions[MANAGE_URL]
        assert unsubscribe.startswith(f"{BASE}/u/") and manage.startswith(f"{BASE}/manage/")
        unsubscribe_token, manage_token = unsubscribe.rsplit("/", 1)[1], manage.rsplit("/", 1)[1]
        assert read_token(keys, UNSUBSCRIBE, unsubscribe_token, now) == row.public_id
        assert read_token(keys, MANAGE, manage_token, now) == row.public_id
        with pytest.raises(TokenError):  # each token is good for its own purpose only
            read_token(keys, MANAGE, unsubscribe_token, now)
    assert len({r.substitutions[UNSUBSCRIBE_URL] for r in batch.recipients}) == 3


def test_every_recipient_gets_one_click_list_unsubscribe_headers(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    batch = _composer(settings, view, now).batch(_rows(2), "1")
    for recipient in batch.recipients:
        url = recipient.substitutions[UNSUBSCRIBE_URL]
        assert dict(recipient.headers) == {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": ONE_CLICK,
        }


def test_a_configured_mailto_is_offered_after_the_link(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    settings = with_delivery(settings, unsubscribe_mailto="unsub@news.example")
    batch = _composer(settings, view, now).batch(_rows(2), "1")
    for recipient in batch.recipients:
        url = recipient.substitutions[UNSUBSCRIBE_URL]
        assert recipient.headers["List-Unsubscribe"] == (
            f"<{url}>, <mailto:unsub@news.example?subject=unsubscribe>"
        )
        assert recipient.headers["List-Unsubscribe-Post"] == ONE_CLICK


def test_the_body_is_the_variants_with_placeholders_a_backend_fills(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    batch = _composer(settings, view, now).batch(_rows(1, variant="Asia|Diplomacy"), "1")
    assert "Asia story 0" in batch.html and "Diplomacy story 1" in batch.html
    assert "Europe story" not in batch.html and "Europe story" not in batch.text
    assert UNSUBSCRIBE_URL in batch.html and UNSUBSCRIBE_URL in batch.text
    recipient = batch.recipients[0]
    personal = personalise(batch.html, dict(recipient.substitutions))
    assert recipient.substitutions[UNSUBSCRIBE_URL] in personal
    assert recipient.substitutions[MANAGE_URL] in personal
    assert UNSUBSCRIBE_URL not in personal and MANAGE_URL not in personal


def test_each_variant_is_rendered_once_however_many_batches(
    settings: Settings, view: EditionView, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[tuple[str, ...] | None] = []

    def counting(
        view: EditionView, brand: Branding, sections: Sequence[str] | None = None
    ) -> RenderedEmail:
        rendered.append(tuple(sections) if sections else None)
        return render_edition(view, brand, sections)

    monkeypatch.setattr(compose, "render_edition", counting)
    composer = _composer(settings, view, now)
    asia = [composer.batch(_rows(2, "Asia"), str(n)) for n in range(3)]
    europe = composer.batch(_rows(2, "Europe"), "3")
    assert rendered == [("Asia",), ("Europe",)]
    assert {b.html for b in asia} == {asia[0].html} != {europe.html}


def test_a_test_batch_is_the_whole_edition_marked_as_a_test(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    composer = _composer(settings, view, now)
    batch = composer.test_batch(["a@x.example", "b@x.example"])
    assert batch.test and batch.subject == "[TEST] " + view.subject
    assert [(r.delivery_id, r.email) for r in batch.recipients] == [
        (1, "a@x.example"),
        (2, "b@x.example"),
    ]
    assert all(f"{section} story 0" in batch.html for section in SECTIONS)
    assert batch.html == composer.batch(_rows(1), "9").html  # everyone's variant, as sent
    keys = settings.secret_keys()
    for recipient in batch.recipients:  # working links, that lead to no subscriber
        token = recipient.substitutions[UNSUBSCRIBE_URL].rsplit("/", 1)[1]
        assert read_token(keys, UNSUBSCRIBE, token, now) == "test-send"
        assert recipient.headers["List-Unsubscribe-Post"] == ONE_CLICK
    assert batch.batch_id != composer.test_batch(["a@x.example"]).batch_id


def test_the_test_subject_prefix_is_configurable(
    settings: Settings, view: EditionView, now: datetime
) -> None:
    settings = with_delivery(settings, test_subject_prefix="PROOF: ")
    batch = _composer(settings, view, now).test_batch(["a@x.example"])
    assert batch.subject == "PROOF: " + view.subject
