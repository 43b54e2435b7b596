"""The staff API on the demo week: read an edition and its candidates, edit it (each edit in the
history under the staff member's email), approve, send a test (it arrives in the outbox), send
it and follow the progress to the end, cancel and resume, preflight, subscribers and numbers.
Every refusal is JSON with a message and, where one applies, the field."""

from __future__ import annotations

from sqlalchemy import select

from digest.send import engine
from digest.store.models import Edition, EditionEvent
from tests.send_helpers import SECTIONS
from tests.staff_helpers import EDITOR_EMAIL, PUBLISHER_EMAIL, StaffWeb
from tests.subscribers_helpers import read_outbox


def history(staff_web: StaffWeb) -> list[tuple[str, str]]:
    with staff_web.web.session() as session:
        events = session.scalars(select(EditionEvent).order_by(EditionEvent.id))
        return [(e.action, e.actor) for e in events]


def test_an_edition_with_items_reasons_variants_window_and_history(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    listed = staff_web.editor.get("/api/editions").json()
    assert [x["id"] for x in listed] == [e] and listed[0]["items"] == 12
    detail = staff_web.editor.get(f"/api/editions/{e}").json()
    assert detail["status"] == "draft" and detail["send"] is None and detail["archive_url"] is None
    assert len(detail["items"]) == 12 and all(i["reasons"] for i in detail["items"])
    assert detail["send_window"] == ["2026-11-20T14:00:00+00:00", "2026-11-21T14:00:00+00:00"]
    assert sum(v["recipients"] for v in detail["variants"]) == 6
    assert detail["history"][0]["action"] == "built" and detail["history"][0]["actor"] == "cron"
    missing = staff_web.editor.get("/api/editions/999")
    assert missing.status_code == 404
    assert missing.json() == {
        "status": "error",
        "error": {"field": None, "message": "no edition with id 999"},
    }


def test_candidates_are_every_article_of_the_week_chosen_or_not(staff_web: StaffWeb) -> None:
    body = staff_web.editor.get(f"/api/editions/{staff_web.edition_id}/candidates").json()
    chosen = [c for c in body["candidates"] if c["chosen"]]
    assert len(chosen) == 12 and len(body["candidates"]) == body["in_window"] == 18
    assert [c["rank"] for c in body["candidates"]] == sorted(c["rank"] for c in body["candidates"])
    assert all(c["reasons"] for c in body["candidates"])


def test_each_edit_lands_in_the_history_under_the_staff_members_email(
    staff_web: StaffWeb,
) -> None:
    e = staff_web.edition_id
    api = staff_web.editor
    out = [
        c for c in api.get(f"/api/editions/{e}/candidates").json()["candidates"] if not c["chosen"]
    ]
    pinned = api.post(f"/api/editions/{e}/pin", json={"article": out[0]["id"]})
    assert pinned.status_code == 200 and pinned.json()["position"] is not None
    item = pinned.json()["edition"]["items"][0]
    assert api.post(f"/api/editions/{e}/drop", json={"article": item["url"]}).status_code == 200
    moved = api.post(f"/api/editions/{e}/move", json={"article": out[0]["id"], "position": 1})
    assert moved.json()["edition"]["items"][0]["article_id"] == out[0]["id"]
    assert api.post(f"/api/editions/{e}/lead", json={"article": out[0]["id"]}).status_code == 200
    for kind, text in (("subject", "A new subject"), ("preheader", "Read me"), ("intro", "Hi")):
        answer = api.post(f"/api/editions/{e}/{kind}", json={"text": text})
        assert answer.json()["edition"][kind] == text
    edits = [(a, who) for a, who in history(staff_web) if a == "edited"]
    assert edits == [("edited", EDITOR_EMAIL)] * 7


def test_refusals_name_the_field(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    api = staff_web.editor
    unknown = api.post(f"/api/editions/{e}/pin", json={"article": 99999})
    assert unknown.status_code == 422
    assert unknown.json()["error"] == {
        "field": "article",
        "message": "no article with id 99999 (see `digest articles list`)",
    }
    nowhere = api.post(f"/api/editions/{e}/move", json={"article": 1})
    assert nowhere.status_code == 422
    assert "position or section" in nowhere.json()["error"]["message"]
    extra = api.post(f"/api/editions/{e}/intro", json={"text": "x", "txet": "y"})
    assert extra.status_code == 422 and extra.json()["error"]["field"] == "txet"
    long = api.post(f"/api/editions/{e}/subject", json={"text": "x" * 301})
    assert long.status_code == 422 and long.json()["error"]["field"] == "text"
    not_json = api.post(
        f"/api/editions/{e}/intro", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["status"] == "error"
    force = staff_web.publisher.post(f"/api/editions/{e}/approve", json={"force": True})
    assert force.status_code == 422 and "force needs a reason" in force.json()["error"]["message"]
    assert history(staff_web) == [("built", "cron")]  # nothing refused was recorded


def test_state_refusals_are_409(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    api = staff_web.publisher
    assert api.post(f"/api/editions/{e}/unapprove").status_code == 409
    send = api.post(f"/api/editions/{e}/send")
    assert send.status_code == 409 and "is a draft, not approved" in send.json()["error"]["message"]
    assert api.post(f"/api/editions/{e}/approve").status_code == 200
    assert api.post(f"/api/editions/{e}/approve").status_code == 409
    assert api.get(f"/api/editions/{e}/send").status_code == 404


def test_a_test_send_arrives_and_is_in_the_history(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    answer = staff_web.editor.post(
        f"/api/editions/{e}/test", json={"to": ["Desk@MeridianReview.example"]}
    )
    assert answer.status_code == 200
    assert answer.json()["results"] == [
        {"email": "desk@meridianreview.example", "status": "accepted", "reason": None}
    ]
    (message,) = read_outbox(staff_web.web.outbox)
    assert (
        message["Subject"].startswith("[TEST] ") and message["To"] == "desk@meridianreview.example"
    )
    assert ("test sent", EDITOR_EMAIL) in history(staff_web)
    bad = staff_web.editor.post(f"/api/editions/{e}/test", json={"to": ["not-an-address"]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "to"


def test_a_publisher_approves_sends_and_follows_the_send_to_the_end(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    api = staff_web.publisher
    assert api.post(f"/api/editions/{e}/approve").json()["edition"]["status"] == "approved"
    started = api.post(f"/api/editions/{e}/send")
    assert started.status_code == 202 and started.json()["planned"] == 6
    assert staff_web.web.site.sends.wait(e)
    progress = api.get(f"/api/editions/{e}/send").json()
    assert progress["done"] and progress["counts"] == {"accepted": 6} and progress["remaining"] == 0
    detail = api.get(f"/api/editions/{e}").json()
    assert detail["status"] == "sent" and detail["send"]["done"]
    assert detail["archive_url"] == f"{staff_web.web.url}/archive/2026-11-20"
    assert [(a, who) for a, who in history(staff_web)] == [
        ("built", "cron"),
        ("approved", PUBLISHER_EMAIL),
        ("send started", PUBLISHER_EMAIL),
        ("sent", "digest"),
    ]
    messages = read_outbox(staff_web.web.outbox)
    assert len(messages) == 6
    assert all(f"{staff_web.web.url}/archive/2026-11-20" in m.as_string() for m in messages)


def test_a_send_is_cancelled_and_resumed_by_a_publisher(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    api = staff_web.publisher
    api.post(f"/api/editions/{e}/approve")
    # A send begun by `digest send` that stopped before any batch (its process died).
    engine.begin(staff_web.web.factory, e, staff_web.web.clock(), settings=staff_web.web.settings)
    cancelled = api.post(f"/api/editions/{e}/send/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["remaining"] == 6
    resumed = api.post(f"/api/editions/{e}/send/resume", json={"resend_uncertain": False})
    assert resumed.status_code == 202
    assert staff_web.web.site.sends.wait(e)
    assert api.get(f"/api/editions/{e}/send").json()["counts"] == {"accepted": 6}
    actions = history(staff_web)
    assert ("send cancelled", PUBLISHER_EMAIL) in actions
    assert ("send resumed", PUBLISHER_EMAIL) in actions


def test_preflight_of_the_edition_and_of_one_variant(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    whole = staff_web.editor.get(f"/api/editions/{e}/preflight").json()
    assert whole["edition"] == e and whole["ok"]
    assert sorted(whole["variants"][0]["sections"]) == sorted(SECTIONS)  # the full edition
    assert all(c["status"] in ("pass", "warn") for v in whole["variants"] for c in v["checks"])
    one = staff_web.editor.get(f"/api/editions/{e}/preflight", params={"variant": "Europe,Asia"})
    assert [v["sections"] for v in one.json()["variants"]] == [["Europe", "Asia"]]
    bad = staff_web.editor.get(f"/api/editions/{e}/preflight", params={"variant": "Sport"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "variant"
    assert "has no section 'Sport'" in bad.json()["error"]["message"]


def test_a_failed_preflight_refuses_approval_with_its_report(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    api = staff_web.publisher
    assert api.post(f"/api/editions/{e}/subject", json={"text": "S" * 120}).status_code == 200
    refused = api.post(f"/api/editions/{e}/approve")
    assert refused.status_code == 409
    body = refused.json()
    assert "approving refused" in body["error"]["message"] and not body["report"]["ok"]
    forced = api.post(f"/api/editions/{e}/approve", json={"force": True, "reason": "long, ok"})
    assert forced.status_code == 200 and forced.json()["edition"]["status"] == "approved"


def test_subscribers_by_search_and_the_numbers(staff_web: StaffWeb) -> None:
    page = staff_web.editor.get("/api/subscribers", params={"search": "USER1"}).json()
    assert page["total"] == 1 and page["subscribers"][0]["email"] == "user1@example.com"
    everyone = staff_web.editor.get("/api/subscribers", params={"limit": 4}).json()
    assert everyone["total"] == 6 and len(everyone["subscribers"]) == 4
    literal = staff_web.editor.get("/api/subscribers", params={"search": "%"}).json()
    assert literal["total"] == 0  # % is a character to find, not a wildcard
    stats = staff_web.editor.get("/api/stats").json()
    assert stats["subscribers"]["by_status"] == {"active": 6}
    assert stats["subscribers"]["active_by_section"]["Europe"] == 4
    assert stats["editions"]["by_status"] == {"draft": 1} and stats["latest_send"] is None


def test_unknown_edition_ids_and_out_of_range_ones(staff_web: StaffWeb) -> None:
    api = staff_web.editor
    assert api.get("/api/editions/0").status_code == 422
    assert api.get(f"/api/editions/{2**40}").status_code == 422
    assert api.post("/api/editions/999/pin", json={"article": 1}).status_code == 404
    with staff_web.web.session() as session:
        assert session.scalar(select(Edition.status)) == "draft"


def test_control_characters_in_a_text_are_dropped_so_the_edition_still_renders(
    staff_web: StaffWeb,
) -> None:
    """Found by schemathesis: an intro with a NUL or a lone surrogate broke MJML for every
    variant; the texts are stored without them (as everything gathered is)."""
    e = staff_web.edition_id
    api = staff_web.editor
    answer = api.post(
        f"/api/editions/{e}/intro", json={"text": "One\x00 week\x0b, \u202eseven\ufffe days"}
    )
    assert answer.json()["edition"]["intro"] == "One week, seven days"
    assert api.post(f"/api/editions/{e}/subject", json={"text": "Two\rlines"}).status_code == 422
    assert api.get(f"/api/editions/{e}/preflight").json()["ok"]
