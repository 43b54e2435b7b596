"""The staff console's pages driven as a browser without script would (httpx, the forms as the
pages hold them) on the demo week: the dashboard, the edition page and each of its forms, the
history, the subscribers. Every change lands in the edition's history under the staff member's
address; every refusal is the page again with the core's one-line error, its HTTP status and
what was typed, and changes nothing."""

from __future__ import annotations

import csv
import html
import io
import json
import re

from sqlalchemy import select

from digest.backends.base import Batch, RecipientStatus
from digest.backends.memory import MemoryBackend
from digest.edition.outgoing import outgoing
from digest.send import engine
from digest.send.events import process
from digest.store.db import transaction
from digest.store.models import Delivery, Edition, EditionEvent, EditionItem
from subscribers.export import CSV_COLUMNS
from subscribers.lifecycle import find_by_email
from tests.conftest import TEST_SECRET
from tests.staff_helpers import EDITOR_EMAIL, PUBLISHER_EMAIL, Console, StaffWeb, sign_in
from tests.subscribers_helpers import read_outbox


def items(staff_web: StaffWeb) -> list[tuple[int, str]]:
    """(article id, section) of the edition's items in reading order."""
    with staff_web.web.session() as session:
        rows = session.scalars(
            select(EditionItem)
            .where(EditionItem.edition_id == staff_web.edition_id)
            .order_by(EditionItem.position)
        )
        return [(i.article_id, i.section) for i in rows]


def edition(staff_web: StaffWeb) -> Edition:
    with staff_web.web.session() as session:
        found = session.get(Edition, staff_web.edition_id)
        assert found is not None
        session.expunge(found)
        return found


def history(staff_web: StaffWeb) -> list[tuple[str, str, str | None]]:
    with staff_web.web.session() as session:
        events = session.scalars(select(EditionEvent).order_by(EditionEvent.id))
        return [(e.action, e.actor, e.detail) for e in events]


def text_of(page: str) -> str:
    """The page's text, tags removed and entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def path(staff_web: StaffWeb, action: str = "") -> str:
    return f"/staff/editions/{staff_web.edition_id}" + (f"/{action}" if action else "")


def test_the_dashboard_shows_the_next_slot_the_current_edition_and_the_last_send(
    staff_web: StaffWeb,
) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    page = text_of(console.get("/staff").text)
    assert "Next Fri 2026-11-20 09:00 EST Edition 1 is a draft: it goes out only once" in page
    assert "Edition 1: The Weekly Round-up: November 20, 2026" in page
    assert "Status draft" in page and "Articles 12" in page
    assert "Nothing has been sent yet." in page
    assert f"{EDITOR_EMAIL} (editor)" in page


def test_the_edition_page_shows_every_candidate_with_its_reasons_and_the_email(
    staff_web: StaffWeb,
) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    answer = console.get(path(staff_web))
    page = text_of(answer.text)
    assert "18 candidates, 12 chosen" in page
    assert "section quota Military Industrial Complex 3 of 3: left out" in page
    assert "chosen for the section minimum" in page
    # The email, per variant, in two widths; the text part; the preflight approving will run.
    assert answer.text.count('src="/staff/preview/1?variant=') == 2
    assert 'class="desktop"' in answer.text and 'class="phone"' in answer.text
    assert "Europe, Asia: 2 readers" in page
    full = outgoing(staff_web.web.factory, staff_web.web.settings, 1, None, staff_web.web.clock())
    shown = re.search(r'<pre class="text-part"[^>]*>(.*?)</pre>', answer.text, re.DOTALL)
    assert shown is not None and html.unescape(shown.group(1)) == full.text
    assert "preflight of edition 1: 3 variants passed" in page
    one = console.get(path(staff_web), variant="Europe,Asia")
    assert 'src="/staff/preview/1?variant=Europe%2CAsia"' in one.text
    framed = console.get("/staff/preview/1", variant="Europe,Asia").text
    only = outgoing(
        staff_web.web.factory, staff_web.web.settings, 1, "Europe,Asia", staff_web.web.clock()
    )
    assert framed == only.html and only.sections == ("Europe", "Asia")
    wrong = text_of(console.get(path(staff_web), variant="Sport").text)
    assert "edition 1 has no section 'Sport'; its sections are: " in wrong


def test_pin_drop_reorder_lead_and_move_section_through_the_forms(staff_web: StaffWeb) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    before = items(staff_web)
    third, _ = before[2]
    # Up: one place earlier (it stays with its section).
    page = console.submit(path(staff_web, "move"), article=str(third), position="2")
    assert f"Moved article {third} to position 2." in text_of(page.text)
    assert items(staff_web)[1][0] == third
    assert f"Moved article {third}" not in console.get(path(staff_web)).text  # said once
    # Drop: the next best takes its place.
    dropped = before[0][0]
    page = console.submit(path(staff_web, "drop"), article=str(dropped))
    assert f"Dropped article {dropped}; the next best took its place." in text_of(page.text)
    assert dropped not in [a for a, _ in items(staff_web)] and len(items(staff_web)) == 12
    # Pin one left out, make it the lead, move it into another section.
    candidates = staff_web.editor.get(f"/api/editions/{staff_web.edition_id}/candidates").json()
    out = next(c["id"] for c in candidates["candidates"] if not c["chosen"])
    assert console.submit(path(staff_web, "pin"), article=str(out)).status_code == 200
    assert out in [a for a, _ in items(staff_web)]
    page = console.submit(path(staff_web, "lead"), article=str(out))
    assert f"Article {out} is the lead story." in text_of(page.text)
    assert items(staff_web)[0][0] == out
    console.submit(path(staff_web, "move"), article=str(out), section="Diplomacy")
    assert (out, "Diplomacy") in items(staff_web)
    edits = [(a, who) for a, who, _ in history(staff_web) if a == "edited"]
    assert edits == [("edited", EDITOR_EMAIL)] * 5


def test_refused_edits_say_why_and_change_nothing(staff_web: StaffWeb) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    version = edition(staff_web).version
    for form, status, message in (
        (
            {"article": "99999", "position": "1"},
            422,
            "no article with id 99999 (see `digest articles list`)",
        ),
        ({"article": "1", "position": "up"}, 422, "position 'up' is not a whole number"),
        ({"article": "1"}, 422, "say where to: --to POSITION or --section SECTION"),
        ({"article": "1", "section": "Sport"}, 422, "--section 'Sport' is not one of"),
    ):
        answer = console.post(path(staff_web, "move"), **form)
        assert answer.status_code == status, form
        assert message in text_of(answer.text), form
    missing = console.post(path(staff_web, "drop"))
    assert missing.status_code == 422 and "article: Field required" in text_of(missing.text)
    assert edition(staff_web).version == version
    gone = console.get("/staff/editions/999")
    assert gone.status_code == 404 and "no edition with id 999" in gone.text


def test_texts_are_saved_and_a_refused_one_keeps_what_was_typed(staff_web: StaffWeb) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    page = console.submit(path(staff_web, "intro"), text="This week: <b>bold</b> & more.")
    assert "Saved the intro." in text_of(page.text)
    assert edition(staff_web).intro == "This week: <b>bold</b> & more."
    assert "This week: &lt;b&gt;bold&lt;/b&gt; &amp; more." in page.text  # escaped, not markup
    long = "S" * 301
    refused = console.post(path(staff_web, "subject"), text=long)
    assert refused.status_code == 422
    assert "the subject is 301 characters; at most 300" in text_of(refused.text)
    assert f'value="{long}"' in refused.text  # what was typed, to fix and send again
    assert edition(staff_web).subject == "The Weekly Round-up: November 20, 2026"
    reset = console.submit(path(staff_web, "intro"), text="")
    assert "The intro is the default again." in text_of(reset.text)


def test_a_test_send_arrives_in_the_outbox_and_a_bad_address_sends_nothing(
    staff_web: StaffWeb,
) -> None:
    console = sign_in(staff_web, EDITOR_EMAIL)
    bad = console.post(path(staff_web, "test"), to="desk@meridianreview.example, nobody")
    assert bad.status_code == 422
    assert "'nobody' is not an email address" in text_of(bad.text)
    assert 'value="desk@meridianreview.example, nobody"' in bad.text
    assert read_outbox(staff_web.web.outbox) == []
    page = console.submit(path(staff_web, "test"), to="Desk@MeridianReview.example; ed@x.example")
    assert "desk@meridianreview.example: accepted; ed@x.example: accepted" in text_of(page.text)
    sent = read_outbox(staff_web.web.outbox)
    assert sorted(m["To"] for m in sent) == ["desk@meridianreview.example", "ed@x.example"]
    assert all(m["Subject"].startswith("[TEST] ") for m in sent)
    assert ("test sent", EDITOR_EMAIL) in [(a, w) for a, w, _ in history(staff_web)]


def refuse_one(batch: Batch) -> list[RecipientStatus]:
    return [
        RecipientStatus(r.delivery_id, "rejected", None, "550 5.1.1 mailbox unavailable")
        if r.email == "user2@example.com"
        else RecipientStatus(r.delivery_id, "accepted", f"m{r.delivery_id}")
        for r in batch.recipients
    ]


def test_a_publisher_approves_sends_follows_it_and_gets_who_did_not_get_it(
    staff_web: StaffWeb,
) -> None:
    site = staff_web.web.site
    site.sends.backend = MemoryBackend(refuse_one)
    console = sign_in(staff_web)
    page = console.submit(path(staff_web, "approve"))
    assert "Approved: the content is frozen for sending." in text_of(page.text)
    assert "Start the send" in page.text and "Back to draft" in page.text
    page = console.submit(path(staff_web, "send"))
    assert "The send has started: 6 recipients planned." in text_of(page.text)
    assert site.sends.wait(staff_web.edition_id)
    page = text_of(console.get(path(staff_web)).text)
    assert "Status sent" in page and "100 % sent" in page and "Send finished" in page
    assert "Who did not get it (CSV)" in page
    report = console.get(path(staff_web, "undelivered.csv"))
    assert report.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="edition-1-not-delivered.csv"' in report.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["email"], r["status"], r["reason"]) for r in rows] == [
        ("user2@example.com", "failed", "550 5.1.1 mailbox unavailable")
    ]
    assert [(a, w) for a, w, _ in history(staff_web)][1:3] == [
        ("approved", PUBLISHER_EMAIL),
        ("send started", PUBLISHER_EMAIL),
    ]
    again = console.post(path(staff_web, "send"))
    assert again.status_code == 409 and "edition 1 was already sent" in text_of(again.text)


def test_a_failed_preflight_needs_an_override_and_a_reason(staff_web: StaffWeb) -> None:
    console = sign_in(staff_web)
    console.submit(path(staff_web, "subject"), text="A very long subject " * 6)
    page = console.get(path(staff_web))
    assert "FAILED" in page.text and "Approve anyway" in page.text
    refused = console.post(path(staff_web, "approve"))
    assert refused.status_code == 409
    assert "subject: the subject has 119 characters (limit 100)" in text_of(refused.text)
    no_reason = console.post(path(staff_web, "approve"), force="1", reason=" ")
    assert no_reason.status_code == 422 and "say why in the reason box" in text_of(no_reason.text)
    assert edition(staff_web).status == "draft"
    done = console.submit(path(staff_web, "approve"), force="1", reason="the desk wants it long")
    assert done.status_code == 200 and edition(staff_web).status == "approved"
    with staff_web.web.session() as session:
        approved = session.scalars(
            select(EditionEvent).where(EditionEvent.action == "approved")
        ).one()
    assert approved.forced and approved.reason == "the desk wants it long"


def test_status_changes_unapprove_skip_and_cancel(staff_web: StaffWeb) -> None:
    console = sign_in(staff_web)
    console.submit(path(staff_web, "approve"))
    page = console.submit(path(staff_web, "unapprove"))
    assert "Back to draft." in text_of(page.text) and edition(staff_web).status == "draft"
    no_reason = console.post(path(staff_web, "skip"), reason="")
    assert no_reason.status_code == 422 and edition(staff_web).status == "draft"
    page = console.submit(path(staff_web, "skip"), reason="a quiet week")
    assert "Skipped: nothing is sent this week" in text_of(page.text)
    assert edition(staff_web).status == "skipped"
    assert console.post(path(staff_web, "cancel")).status_code == 409


def test_a_send_is_cancelled_and_resumed_from_the_page(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    console = sign_in(staff_web)
    console.submit(path(staff_web, "approve"))
    # A send begun by `digest send` whose process died before any batch.
    engine.begin(staff_web.web.factory, e, staff_web.web.clock(), settings=staff_web.web.settings)
    page = console.get(path(staff_web))
    assert 'data-progress-url="/api/editions/1/send"' in page.text  # the script follows it
    assert "Cancel the send" in page.text
    page = console.submit(path(staff_web, "send/cancel"))
    assert "The send is cancelled: 6 recipients not sent (resume sends them)." in text_of(page.text)
    assert "Resume the send" in page.text and "data-progress-url" not in page.text
    page = console.submit(path(staff_web, "send/resume"))
    assert "The send continues." in text_of(page.text)
    assert staff_web.web.site.sends.wait(e)
    assert "100 % sent" in text_of(console.get(path(staff_web)).text)


def test_the_history_page_counts_each_past_edition(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    console = sign_in(staff_web, EDITOR_EMAIL)
    assert "No edition has gone past the draft stage yet." in console.get("/staff/history").text
    publisher = sign_in(staff_web)
    publisher.submit(path(staff_web, "approve"))
    publisher.submit(path(staff_web, "send"))
    assert staff_web.web.site.sends.wait(e)
    with staff_web.web.session() as session:
        first = session.scalars(select(Delivery).order_by(Delivery.id)).first()
        item = session.scalars(select(EditionItem).where(EditionItem.position == 1)).one()
        assert first is not None
        delivery, url, title = first.id, item.url, item.title
    common = {"email": "x@example.com", "timestamp": 1_800_000_000, "edition": str(e)}
    events = [
        {**common, "event": "open", "sg_event_id": "o1", "delivery": str(delivery)},
        {**common, "event": "click", "sg_event_id": "c1", "delivery": str(delivery), "url": url},
    ]
    with transaction(staff_web.web.factory) as session:
        process(session, events, now=staff_web.web.clock(), keys=[TEST_SECRET], blocked_threshold=3)
    page = console.get("/staff/history")
    cells = re.findall(r'<td class="num">([^<]*)</td>', page.text)
    assert cells[:7] == ["6", "6", "0", "0", "1", "1", "0"]
    assert f"{title} (1)" in text_of(page.text)
    assert "Most-clicked articles" in page.text and f'href="{url}"' in page.text
    dashboard = text_of(console.get("/staff").text)
    assert "Last edition sent" in dashboard and "Edition 1: The Weekly Round-up" in dashboard


def reader(staff_web: StaffWeb) -> str:
    """A person who subscribed through the form and confirmed: their public id."""
    staff_web.web.confirm("reader@example.com")
    with staff_web.web.session() as session:
        found = find_by_email(session, "reader@example.com")
        assert found is not None
        return found.public_id


def test_subscribers_are_found_by_address_and_status_with_the_lists_numbers(
    staff_web: StaffWeb,
) -> None:
    reader(staff_web)
    console = sign_in(staff_web, EDITOR_EMAIL)
    page = console.get("/staff/subscribers", q="READER")
    found = text_of(page.text)
    assert "1 found" in found and "reader@example.com" in found
    assert "Active, by section" in found and "Europe 5" in found and "total 7" in found
    pending = console.get("/staff/subscribers", status="pending")
    assert "0 found" in text_of(pending.text)
    bad = console.get("/staff/subscribers", status="deleted")
    assert bad.status_code == 422
    assert "status 'deleted' is not one of pending, active" in text_of(bad.text)
    literal = text_of(console.get("/staff/subscribers", q="%").text)
    assert "0 found" in literal  # a character to find, not a wildcard


def test_one_persons_record_and_consent_history_and_the_exports(staff_web: StaffWeb) -> None:
    public_id = reader(staff_web)
    console = sign_in(staff_web, EDITOR_EMAIL)
    page = text_of(console.get(f"/staff/subscribers/{public_id}").text)
    assert "reader@example.com" in page and "Status active" in page
    assert "subscribe subscribe form 127.0.0.1" in page
    assert "confirm confirmation link 127.0.0.1" in page
    record = console.get(f"/staff/subscribers/{public_id}/export.json")
    assert record.headers["content-type"] == "application/json"
    data = json.loads(record.text)
    assert data["subscriber"]["email"] == "reader@example.com"
    assert [c["event"] for c in data["consent_history"]] == ["subscribe", "confirm"]
    export = console.get("/staff/subscribers/export.csv")
    assert 'filename="subscribers.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 7
    active = console.get("/staff/subscribers/export.csv", status="active")
    assert 'filename="subscribers-active.csv"' in active.headers["content-disposition"]
    assert len(list(csv.DictReader(io.StringIO(active.text)))) == 7
    assert console.get("/staff/subscribers/0123456789abcdef0123456789abcdef").status_code == 404


def test_erasure_asks_for_the_address_and_then_erases(staff_web: StaffWeb) -> None:
    public_id = reader(staff_web)
    console = sign_in(staff_web)
    person = console.get(f"/staff/subscribers/{public_id}")
    assert f'href="/staff/subscribers/{public_id}/erase"' in person.text
    ask = console.get(f"/staff/subscribers/{public_id}/erase")
    assert "Erase reader@example.com?" in text_of(ask.text) and "cannot be undone" in ask.text
    wrong = console.post(f"/staff/subscribers/{public_id}/erase", confirm="reader@example.org")
    assert wrong.status_code == 422 and "type their email address exactly" in text_of(wrong.text)
    assert 'value="reader@example.org"' in wrong.text
    with staff_web.web.session() as session:
        assert find_by_email(session, "reader@example.com") is not None
    done = console.submit(f"/staff/subscribers/{public_id}/erase", confirm=" Reader@Example.com ")
    assert "Erased the subscriber: only a keyed hash is kept" in text_of(done.text)
    assert "reader@example.com" not in done.text
    with staff_web.web.session() as session:
        assert find_by_email(session, "reader@example.com") is None
    assert console.get(f"/staff/subscribers/{public_id}").status_code == 404


def test_a_console_session_is_the_apis_session_too(staff_web: StaffWeb) -> None:
    """The page's script reads the send's progress from the API with the session cookie."""
    console: Console = sign_in(staff_web, EDITOR_EMAIL)
    progress = console.client.get(f"/api/editions/{staff_web.edition_id}/send")
    assert progress.status_code == 404  # not sent yet: the API's JSON answer, not a sign-in page
    assert progress.json()["error"]["message"] == "edition 1 has not been sent (status draft)"
