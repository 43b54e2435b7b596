"""Preflight (issue 12): each check fails on the case it exists for, the size is measured on the
part as sent with the longest links, the headers are read raw from the configured backend's own
message, and a failure blocks approving and sending unless a person overrides it."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends import wire_headers
from digest.backends.base import Batch
from digest.backends.mime import build_message, encoded_body
from digest.config import Settings
from digest.edition import edits
from digest.edition.lifecycle import Override, content_hash
from digest.edition.options import branding
from digest.edition.preflight import (
    LONGEST_EMAIL,
    LONGEST_PUBLIC_ID,
    SAMPLE_KEYS,
    parse_variant,
    preflight_edition,
    preflight_view,
    sample,
)
from digest.errors import EditionStateError, PreflightError, UsageError
from digest.people.links import recipients
from digest.render.email import EditionView, ItemView, render_edition
from digest.render.preflight import Check, Sample, check
from digest.send import engine
from digest.store.db import transaction
from digest.store.models import APPROVED, DRAFT, Delivery, Edition
from tests.send_helpers import add_subscribers, make_edition, with_delivery

# A realistic long link base: 100+ characters before the token.
LONG_BASE = (
    "https://newsletters.the-meridian-review.example/weekly-round-up/subscriber-links/v2/"
    + "x" * 20
)


def _view(
    now: datetime, items: int = 12, summary: str = "A summary of the story. " * 8
) -> EditionView:
    sections = ("Middle East", "Europe", "Asia")
    return EditionView(
        id=1,
        subject="The Weekly Round-up: November 20, 2026",
        intro="Five desks, one week.",
        cutoff=now,
        items=tuple(
            ItemView(
                title=f"Story {n} about the world",
                url=f"https://news.example/2026/11/story-{n}",
                section=sections[n % 3],
                summary=summary,
                author="A. Writer",
                published_at=now - timedelta(days=1),
            )
            for n in range(items)
        ),
    )


def _sample(settings: Settings, now: datetime, view: EditionView | None = None) -> Sample:
    view = view or _view(now)
    return sample(settings, view, render_edition(view, branding(settings)), now)


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.name != "css"}


def _failed(s: Sample) -> dict[str, Check]:
    return {name: c for name, c in _by_name(check(s)).items() if c.status == "fail"}


def test_a_realistic_edition_passes_every_check(settings: Settings, now: datetime) -> None:
    checks = _by_name(check(_sample(settings, now)))
    assert {c.status for c in checks.values()} == {"pass"}, checks
    assert set(checks) == {
        "size", "clip", "style", "images", "links", "leftovers", "text",
        "list-unsubscribe", "one-click", "subject", "preheader",
    }  # fmt: skip


# --- each check's failing case -----------------------------------------------------------


def test_size_counts_the_encoded_part_and_fails_past_95_kb(
    settings: Settings, now: datetime
) -> None:
    big = _sample(settings, now, _view(now, items=60, summary="Très long résumé = détail. " * 60))
    failed = _failed(big)
    assert "size" in failed and "as sent" in failed["size"].message
    # Quoted-printable makes the part bigger than the decoded HTML: that is what Gmail counts.
    assert len(big.html_part) > len(big.html.encode())
    assert "clip" in failed and "past Gmail's clip point" in failed["clip"].message


def test_the_size_is_measured_with_the_longest_links(settings: Settings, now: datetime) -> None:
    short = _sample(settings, now)
    long = _sample(
        settings.model_copy(
            update={"web": settings.web.model_copy(update={"base_url": LONG_BASE})}
        ),
        now,
    )
    assert len(long.html_part) > len(short.html_part)
    assert LONGEST_PUBLIC_ID in long.unsubscribe_url or len(long.unsubscribe_url) > 140


def test_an_html_without_an_unsubscribe_link_fails_clip(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    assert _failed(dataclasses.replace(good, unsubscribe_offset=-1))["clip"].status == "fail"


def test_a_style_block_past_16_kb_fails(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    style = "<style>" + ".a{color:red}" * 1400 + "</style>"
    failed = _failed(dataclasses.replace(good, html=good.html.replace("<head>", "<head>" + style)))
    assert "16.0 KB" in failed["style"].message


@pytest.mark.parametrize(
    ("img", "problem"),
    [
        ('<img src="https://img.example/a.jpg">', "without alt"),
        ('<img src="http://img.example/a.jpg" alt="">', "not on https"),
        ('<img src="/a.jpg" alt="A map">', "not on https"),
    ],
)
def test_images_need_alt_and_https(
    settings: Settings, now: datetime, img: str, problem: str
) -> None:
    good = _sample(settings, now)
    failed = _failed(dataclasses.replace(good, html=good.html.replace("</body>", img + "</body>")))
    assert problem in failed["images"].message


def test_decorative_image_with_empty_alt_passes(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    img = '<img src="https://img.example/a.jpg" alt="">'
    assert "images" not in _failed(
        dataclasses.replace(good, html=good.html.replace("</body>", img + "</body>"))
    )


@pytest.mark.parametrize(
    "href", ["/archive/1", "javascript:alert(1)", "", "#top", "news.example/x"]
)
def test_links_must_be_absolute_http(settings: Settings, now: datetime, href: str) -> None:
    good = _sample(settings, now)
    html = good.html.replace("</body>", f'<a href="{href}">x</a></body>')
    assert "not absolute" in _failed(dataclasses.replace(good, html=html))["links"].message


@pytest.mark.parametrize("leftover", ["%%archive_url%%", "{{ name }}", "{% endif %}", "<mj-text>"])
def test_template_leftovers_fail(settings: Settings, now: datetime, leftover: str) -> None:
    good = _sample(settings, now)
    failed = _failed(dataclasses.replace(good, text=good.text + leftover))
    assert "in the text" in failed["leftovers"].message


def test_braces_that_an_article_itself_contains_are_not_leftovers(
    settings: Settings, now: datetime
) -> None:
    good = _sample(settings, now)
    odd = dataclasses.replace(good, text=good.text + "{{ 7*7 }}", content="Why {{ 7*7 }} matters")
    assert "leftovers" not in _failed(odd)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"text": ""}, "empty"),
        ({"text": "Hello\n\nThe Meridian Review, 1 Example Street\n"}, "the unsubscribe link"),
        ({"postal_address": "99 Nowhere Road, Atlantis"}, "the postal address"),
    ],
)
def test_the_text_part_needs_the_unsubscribe_link_and_the_postal_address(
    settings: Settings, now: datetime, change: dict[str, str], problem: str
) -> None:
    failed = _failed(dataclasses.replace(_sample(settings, now), **change))
    assert problem in failed["text"].message


def test_an_encoded_list_unsubscribe_fails(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    encoded = [
        (k, "=?utf-8?q?=3C" + good.unsubscribe_url.replace(":", "=3A") + "=3E?=")
        if k == "List-Unsubscribe"
        else (k, v)
        for k, v in good.headers
    ]
    failed = _failed(dataclasses.replace(good, headers=encoded))
    assert "encoded" in failed["list-unsubscribe"].message


def test_a_missing_list_unsubscribe_fails(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    headers = [(k, v) for k, v in good.headers if k != "List-Unsubscribe"]
    assert (
        "0 List-Unsubscribe headers"
        in _failed(dataclasses.replace(good, headers=headers))["list-unsubscribe"].message
    )


def test_an_http_unsubscribe_url_fails_unless_the_host_is_loopback(
    settings: Settings, now: datetime
) -> None:
    web = settings.web.model_copy(update={"base_url": "http://news.example"})
    plain = _sample(settings.model_copy(update={"web": web}), now)
    assert "not https" in _failed(plain)["list-unsubscribe"].message
    local = settings.web.model_copy(update={"base_url": "http://127.0.0.1:8000"})
    assert "list-unsubscribe" not in _failed(
        _sample(settings.model_copy(update={"web": local}), now)
    )


def test_a_missing_one_click_header_fails(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    headers = [(k, v) for k, v in good.headers if k != "List-Unsubscribe-Post"]
    assert "one-click" in _failed(dataclasses.replace(good, headers=headers))


@pytest.mark.parametrize(("subject", "problem"), [("x" * 101, "101 characters"), ("  ", "empty")])
def test_the_subject_must_fit(
    settings: Settings, now: datetime, subject: str, problem: str
) -> None:
    failed = _failed(dataclasses.replace(_sample(settings, now), subject=subject))
    assert problem in failed["subject"].message


def test_a_missing_preheader_fails(settings: Settings, now: datetime) -> None:
    assert "preheader" in _failed(dataclasses.replace(_sample(settings, now), preheader=""))


def test_css_that_outlook_ignores_is_a_warning_not_a_failure(
    settings: Settings, now: datetime
) -> None:
    good = _sample(settings, now)
    html = good.html.replace("</body>", '<div style="display:flex">x</div></body>')
    checks = check(dataclasses.replace(good, html=html))
    flex = [c for c in checks if c.name == "css" and "display:flex" in c.message]
    assert flex and flex[0].status == "warn" and "Outlook for Windows" in flex[0].message
    assert not [c for c in checks if c.status == "fail"]


def test_css_inside_outlook_only_comments_is_not_counted(settings: Settings, now: datetime) -> None:
    good = _sample(settings, now)
    html = good.html.replace(
        "</body>", '<!--[if mso]><div style="display:flex">x</div><![endif]--></body>'
    )
    assert not [
        c for c in check(dataclasses.replace(good, html=html)) if "display:flex" in c.message
    ]


# --- measured on what is sent -----------------------------------------------------------------


def test_the_encoded_size_is_the_html_part_of_a_real_message(
    settings: Settings, now: datetime
) -> None:
    s = _sample(settings, now, _view(now, summary="Résumé — «quoted» = yes. " * 10))
    recipient = recipients(
        [(1, LONGEST_EMAIL, "", LONGEST_PUBLIC_ID)], settings.web.base_url, SAMPLE_KEYS, None
    )[0]
    email_ = render_edition(
        _view(now, summary="Résumé — «quoted» = yes. " * 10), branding(settings)
    )
    batch = Batch("b", 1, email_.subject, email_.html, email_.text, "news@example.com", [recipient])
    raw = build_message(batch, recipient, now).as_bytes()
    html_part = raw.split(b"Content-Type: text/html", 1)[1].split(b"\r\n\r\n", 1)[1]
    boundary = email.message_from_bytes(raw).get_boundary()
    assert boundary is not None
    html_part = html_part.split(b"\r\n--" + boundary.encode(), 1)[0]
    assert html_part == s.html_part == encoded_body(s.html)


@pytest.mark.parametrize("backend", ["outbox", "smtp", "sendgrid"])
def test_list_unsubscribe_is_read_raw_from_the_backends_own_message(
    settings: Settings, now: datetime, backend: str
) -> None:
    web = settings.web.model_copy(update={"base_url": LONG_BASE})
    configured = with_delivery(
        settings.model_copy(update={"web": web}),
        backend=backend,
        unsubscribe_mailto="unsubscribe@news.example",
    )
    s = _sample(configured, now)
    assert len(s.unsubscribe_url) > 150
    [value] = [v for k, v in s.headers if k == "List-Unsubscribe"]
    assert value == f"<{s.unsubscribe_url}>, <mailto:unsubscribe@news.example?subject=unsubscribe>"
    assert "=?" not in value
    assert _by_name(check(s))["list-unsubscribe"].status == "pass"


def test_wire_headers_of_a_mime_message_are_unfolded_but_not_decoded(now: datetime) -> None:
    [r] = recipients(
        [(1, "a@example.com", "", LONGEST_PUBLIC_ID)], LONG_BASE, SAMPLE_KEYS, "u@news.example"
    )
    batch = Batch("b", 1, "Über uns", "<p>x</p>", "x", "news@example.com", [r])
    headers = dict(wire_headers("outbox", batch, r, now))
    assert headers["Subject"].startswith("=?utf-8?")  # the subject is encoded, as it must be
    assert headers["List-Unsubscribe"] == r.headers["List-Unsubscribe"]
    parsed = email.message_from_bytes(
        build_message(batch, r, now).as_bytes(), policy=email.policy.default
    )
    assert parsed["List-Unsubscribe"] == r.headers["List-Unsubscribe"]


# --- the edition: variants, approve and send -----------------------------------------------------


def _long_subject(factory: sessionmaker[Session], edition_id: int) -> None:
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        edition.subject = "A subject that goes on " * 6
        edition.content_hash = content_hash(edition)


def test_preflight_checks_the_full_edition_and_each_variant_with_subscribers(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    add_subscribers(factory, 6, now, sections=[None, ["Europe"], ["Asia", "Europe"]])
    report = preflight_edition(factory, settings, edition_id, now)
    assert [(v.sections, v.recipients) for v in report.variants] == [
        (("Middle East", "Europe", "Asia", "Military Industrial Complex", "Diplomacy"), 2),
        (("Europe",), 2),
        (("Europe", "Asia"), 2),
    ]
    assert report.ok and report.as_json()["ok"] is True
    assert all(v.html_bytes > 5000 for v in report.variants)


def test_one_variant_by_its_section_names(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    report = preflight_edition(factory, settings, edition_id, now, variant="asia , EUROPE")
    assert [v.sections for v in report.variants] == [("Europe", "Asia")]


def test_an_unknown_section_in_a_variant_names_the_editions_sections(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    with pytest.raises(
        UsageError, match="no section 'Sport'; its sections are: Middle East, Europe"
    ):
        preflight_edition(factory, settings, edition_id, now, variant="Europe,Sport")


def test_a_failed_preflight_blocks_approval_and_changes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    _long_subject(factory, edition_id)
    _set_status(factory, edition_id, DRAFT)
    with pytest.raises(PreflightError, match=r"subject: the subject has 13\d characters") as caught:
        edits.change_status(factory, settings, edition_id, "approve", "ann", now)
    assert "--force --reason" in str(caught.value)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.status == DRAFT and not edition.history


def test_a_forced_approval_records_the_failure_and_the_reason(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    _long_subject(factory, edition_id)
    _set_status(factory, edition_id, DRAFT)
    reason = "the long subject is the campaign's name"
    edits.change_status(
        factory, settings, edition_id, "approve", "ann", now, force=Override(reason)
    )
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.status == APPROVED
        [event] = edition.history
        assert event.forced and event.reason == reason and event.actor == "ann"
        assert "preflight failed: [Middle East, Europe" in (event.detail or "")


def test_a_failed_preflight_blocks_a_send_before_anything_is_frozen(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    add_subscribers(factory, 3, now)
    _long_subject(factory, edition_id)
    with pytest.raises(PreflightError, match="sending refused"):
        engine.begin(factory, edition_id, now, settings=settings)
    with pytest.raises(PreflightError):
        engine.dry_run(factory, settings, edition_id, now)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.status == APPROVED
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_forced_send_goes_and_the_history_says_why(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    add_subscribers(factory, 3, now)
    _long_subject(factory, edition_id)
    report = engine.begin(
        factory,
        edition_id,
        now,
        settings=settings,
        actor="bo",
        force=Override("approved by the editor"),
    )
    assert report.planned == 3
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        started = next(e for e in edition.history if e.action == "send started")
        assert started.forced and "preflight failed" in (started.detail or "")


def _set_status(factory: sessionmaker[Session], edition_id: int, status: str) -> None:
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        edition.status = status


def test_parse_variant_keeps_the_editions_order(now: datetime) -> None:
    assert parse_variant(_view(now), "Asia,Middle East") == ("Middle East", "Asia")


def test_preflight_view_reports_each_failure_with_its_fix(
    settings: Settings, now: datetime
) -> None:
    view = dataclasses.replace(_view(now), subject="")
    report = preflight_view(settings, view, [(("Europe",), 4)], now)
    assert not report.ok
    assert report.failures == [
        "[Europe] subject: the subject is empty (fix: `digest edition subject ID TEXT`)"
    ]
    assert report.as_json()["variants"][0]["recipients"] == 4


def test_an_edition_without_articles_has_nothing_to_check(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now, sections=())
    with pytest.raises(EditionStateError, match="has no articles: nothing to check"):
        preflight_edition(factory, settings, edition_id, now)
