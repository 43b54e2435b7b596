"""The note staff get when a draft is built, as their mail client receives it (the outbox's raw
.eml): who it is from and to, that it is automatic and no newsletter, the edition's subject and
articles, the preflight result, the commands; feed text escaped in the HTML part."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.schedule import notices
from digest.schedule.checks import Preflight
from digest.schedule.due import run_due
from digest.schedule.notices import EditionBrief, Item, Notice
from tests.schedule_helpers import SLOT, STAFF, at, edition_at, notes, with_schedule


def test_the_build_note_as_staff_receive_it(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    s = with_schedule(settings)
    run_due(factory, s, clock=at(SLOT - timedelta(hours=24)))
    edition = edition_at(factory, SLOT)
    assert edition is not None
    received = notes(settings.outbox_path)
    assert sorted(n.to for n in received) == sorted(STAFF)
    note = received[0]
    assert note.subject == (
        "[The Weekly Round-up] Edition 1 is ready for review: it goes out 2026-11-20 09:00 EST "
        "once approved"
    )
    headers = note.headers
    assert headers["From"] == "The Meridian Review <roundup@meridianreview.example>"
    assert headers["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in headers  # a note to staff, not a newsletter
    text = note.flat
    assert "Subject: The Weekly Round-up: November 20, 2026" in text
    assert "Send window: 2026-11-20 09:00 EST → 2026-11-21 09:00 EST" in text
    assert f"{len(edition.items)} article(s):" in text
    for item in edition.items:
        assert item.title in text and item.url in text
    assert "Preflight: passed" in text
    assert "Approve it: digest edition approve 1" in text
    assert "POST http://127.0.0.1:8000/api/editions/1/approve" in text
    assert "Preview the email: digest preview --edition 1" in text
    assert "nothing is sent unless it is approved" in text


def test_feed_text_is_escaped_in_the_html_note(settings: Settings) -> None:
    hostile = '"><img src=x onerror=alert(1)> & <script>alert(2)</script>'
    brief = EditionBrief(
        id=7,
        status="draft",
        subject=f"Subject {hostile}",
        week="a week",
        window="a window",
        items=(Item("Europe", hostile, "https://news.example/a?x=1&y=2"),),
    )
    check = Preflight(False, failures=[f"failure {hostile}"], warnings=[])
    notice = Notice(subject="A note", summary=f"Summary {hostile}", edition=brief, preflight=check)
    sent = notices.send(with_schedule(settings), notice)
    assert sent.to == STAFF and sent.error is None
    note = notes(settings.outbox_path)[0]
    assert "<script>" not in note.html and "<img src=x" not in note.html
    assert note.html.count("&lt;script&gt;alert(2)&lt;/script&gt;") == 4
    assert 'href="https://news.example/a?x=1&amp;y=2"' in note.html
    assert hostile in note.text  # plain text stays as written


def test_no_addresses_means_no_mail(settings: Settings) -> None:
    sent = notices.send(with_schedule(settings, notify=[]), Notice(subject="x", summary="y"))
    assert sent.to == [] and sent.error == "no [schedule] notify addresses"
