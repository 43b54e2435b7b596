"""Who may call the staff API: every /api route but the public three needs a staff token or
session (a test walks the route table, so a new route cannot forget its guard), anonymous and
forged requests are refused with 401, an editor cannot approve or send (403), a revoked token is
refused, guessing is slowed down per IP, and a console session needs its CSRF token."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from digest.staff import tokens
from digest.store.db import transaction
from digest.store.models import EditionEvent, StaffToken
from digest.web.app import PUBLIC_API
from digest.web.staffauth import staff
from tests.staff_helpers import EDITOR_EMAIL, PASSWORD, PUBLISHER_EMAIL, StaffWeb
from tests.web.test_guards import calls


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every /api route as the app serves it, with the router's prefix."""
    found = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.path.startswith("/api"):
            found += [(method, route.path) for method in sorted(route.methods or ())]
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_api_route_but_the_public_ones_depends_on_the_staff_guard(
    staff_web: StaffWeb,
) -> None:
    app = staff_web.live.server.config.app  # type: ignore[union-attr]
    guarded, public = set(), set()
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.path.startswith("/api"):
            continue
        (guarded if staff in set(calls(route.dependant)) else public).add(route.path)
    assert public == PUBLIC_API
    assert {"/api/editions", "/api/openapi.json", "/api/docs"} <= guarded


def test_anonymous_requests_to_every_staff_route_are_refused_with_401(staff_web: StaffWeb) -> None:
    app = staff_web.live.server.config.app  # type: ignore[union-attr]
    anonymous = staff_web.client()
    routes = [(m, p) for m, p in api_routes(app) if p not in PUBLIC_API]
    assert len(routes) >= 20
    for method, path in routes:
        response = anonymous.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        error = response.json()["error"]
        assert "sign in" in error["message"] and response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_a_malformed_header_and_a_forged_cookie_are_401(
    staff_web: StaffWeb,
) -> None:
    for headers in (
        {"Authorization": "Bearer dgst_not-a-token"},
        {"Authorization": f"Token {staff_web.publisher_token}"},
        {"Cookie": "digest_staff=forged.value"},
    ):
        response = staff_web.client(**headers).get("/api/editions")
        assert response.status_code == 401, headers
        assert staff_web.publisher_token not in response.text


def test_a_token_in_the_query_string_is_never_accepted(staff_web: StaffWeb) -> None:
    response = staff_web.client().get(f"/api/editions?access_token={staff_web.publisher_token}")
    assert response.status_code == 401


def test_an_editor_reads_and_edits_but_cannot_approve_or_send(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    editor = staff_web.editor
    assert editor.get(f"/api/editions/{e}").status_code == 200
    assert editor.post(f"/api/editions/{e}/intro", json={"text": "Hello"}).status_code == 200
    for action in ("approve", "unapprove", "cancel", "send", "send/cancel", "send/resume"):
        response = editor.post(f"/api/editions/{e}/{action}")
        assert response.status_code == 403, action
        assert response.json()["error"]["message"].endswith(f"only a publisher may {action}") or (
            "only a publisher" in response.json()["error"]["message"]
        )
    response = editor.post(f"/api/editions/{e}/skip", json={"reason": "no"})
    assert response.status_code == 403
    with staff_web.web.session() as session:
        actions = [ev.action for ev in session.scalars(select(EditionEvent))]
    assert "approved" not in actions and "edited" in actions


def test_an_editor_cannot_edit_an_approved_edition_a_publisher_can(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    assert staff_web.publisher.post(f"/api/editions/{e}/approve").status_code == 200
    refused = staff_web.editor.post(f"/api/editions/{e}/intro", json={"text": "Late"})
    assert refused.status_code == 403
    assert "a publisher must unapprove it first" in refused.json()["error"]["message"]
    done = staff_web.publisher.post(f"/api/editions/{e}/intro", json={"text": "Late"})
    assert done.status_code == 200 and done.json()["edition"]["status"] == "draft"
    assert "returned it to draft" in done.json()["warnings"][0]


def test_a_revoked_token_is_refused(staff_web: StaffWeb) -> None:
    assert staff_web.editor.get("/api/me").status_code == 200
    with transaction(staff_web.web.factory) as session:
        row = session.scalar(select(StaffToken).where(StaffToken.name == "tests").limit(1))
        assert row is not None
        row_id = row.id
        tokens.revoke(session, row_id, staff_web.web.clock())
    holder = staff_web.publisher if row_id == 1 else staff_web.editor
    response = holder.get("/api/me")
    assert response.status_code == 401
    assert f"API token {row_id} (tests) was revoked" in response.json()["error"]["message"]


def test_me_says_who_and_what_the_role_allows(staff_web: StaffWeb) -> None:
    me = staff_web.editor.get("/api/me").json()
    assert me == {
        "email": EDITOR_EMAIL,
        "role": "editor",
        "via": "token",
        "may": ["read", "edit", "test"],
    }


def test_guessing_tokens_is_slowed_down_per_ip_across_the_database(staff_web: StaffWeb) -> None:
    """[staff] token_failures (20) wrong tokens per 15 minutes; then 429 even for a good one,
    until the window refills; the count lives in the database."""
    guesser = staff_web.client("dgst_wrong")
    codes = [guesser.get("/api/me").status_code for _ in range(21)]
    assert codes[:20] == [401] * 20 and codes[20] == 429
    locked = staff_web.publisher.get("/api/me")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    staff_web.web.clock.advance(minutes=15)
    assert staff_web.publisher.get("/api/me").status_code == 200


def sign_in(staff_web: StaffWeb, email: str, password: str) -> httpx.Response:
    client = staff_web.client()
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    data = {"email": email, "password": password, "csrf_token": token.group(1)}
    return client.post("/staff/login", data=data)


def test_a_session_signs_in_reads_and_needs_its_csrf_token_to_change_anything(
    staff_web: StaffWeb,
) -> None:
    client = staff_web.client()
    page = client.get("/staff/login")
    form = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert form is not None
    answer = client.post(
        "/staff/login",
        data={"email": PUBLISHER_EMAIL, "password": PASSWORD, "csrf_token": form.group(1)},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/staff"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "digest_staff=" in cookie
    assert client.get("/staff").status_code == 200
    me = client.get("/api/me").json()
    assert me["via"] == "session" and me["email"] == PUBLISHER_EMAIL
    e = staff_web.edition_id
    refused = client.post(f"/api/editions/{e}/intro", json={"text": "x"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
    docs = client.get("/api/docs")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', docs.text)
    assert csrf is not None
    done = client.post(
        f"/api/editions/{e}/intro", json={"text": "x"}, headers={"X-CSRF-Token": csrf.group(1)}
    )
    assert done.status_code == 200
    # Signing out ends the session on the server: the old cookie no longer works.
    old = client.cookies.get("digest_staff")
    home = client.get("/staff")
    logout_token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert logout_token is not None
    assert (
        client.post("/staff/logout", data={"csrf_token": logout_token.group(1)}).status_code == 303
    )
    replay = staff_web.client(Cookie=f"digest_staff={old}")
    assert replay.get("/api/me").status_code == 401
    assert staff_web.client().get("/staff").headers.get("location", "").startswith("/staff/login")


def test_a_wrong_password_is_401_and_too_many_lock_the_account_and_the_ip(
    staff_web: StaffWeb,
) -> None:
    assert sign_in(staff_web, PUBLISHER_EMAIL, "wrong password!!").status_code == 401
    for _ in range(9):
        sign_in(staff_web, PUBLISHER_EMAIL, "wrong password!!")
    locked = sign_in(staff_web, PUBLISHER_EMAIL, PASSWORD)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert sign_in(staff_web, EDITOR_EMAIL, PASSWORD).status_code == 429  # the same IP
    staff_web.web.clock.advance(minutes=15)
    assert sign_in(staff_web, PUBLISHER_EMAIL, PASSWORD).status_code == 303


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(staff_web: StaffWeb) -> None:
    unknown = sign_in(staff_web, "nobody@meridianreview.example", "whatever password")
    wrong = sign_in(staff_web, PUBLISHER_EMAIL, "whatever password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong email address or password." in unknown.text and "nobody" in unknown.text


def test_after_signing_in_the_next_page_is_ours_never_another_site(staff_web: StaffWeb) -> None:
    client = staff_web.client()
    page = client.get("/staff/login?next=//evil.example/x")
    assert 'name="next" value="/staff"' in page.text
    page = client.get("/staff/login?next=/api/docs")
    assert 'name="next" value="/api/docs"' in page.text


def test_a_session_expires_after_session_hours(staff_web: StaffWeb) -> None:
    hours = staff_web.web.settings.staff.session_hours
    client = staff_web.client()
    page = client.get("/staff/login")
    form = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert form is not None
    client.post(
        "/staff/login",
        data={"email": EDITOR_EMAIL, "password": PASSWORD, "csrf_token": form.group(1)},
    )
    assert client.get("/api/me").status_code == 200
    staff_web.web.clock.advance(hours=hours, seconds=1)
    response = client.get("/api/me")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
