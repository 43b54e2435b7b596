"""Who may use the staff console: every /staff route but signing in and out needs a session
(a test walks the route table, so a new page cannot forget it) and sends an anonymous visitor
to the sign-in page; every console form needs the session's CSRF token (403 without it, and
nothing changes); an editor sees no approve, send or erase button, and a forged approve or
erase is refused. The pages' headers: scripts and styles from our own origin only, the
previews framed by our own pages only."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from digest.store.models import Edition
from digest.web.app import PUBLIC_STAFF
from digest.web.console import console_csrf
from digest.web.staff import signed_in
from subscribers.lifecycle import find_by_email
from tests.staff_helpers import (
    EDITOR_EMAIL,
    PASSWORD,
    PUBLISHER_EMAIL,
    StaffWeb,
    page_token,
    sign_in,
    start_staff_web,
)
from tests.web.test_guards import calls


def console_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every /staff route the app serves."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (context.path or "").startswith("/staff"):
            for method in sorted(context.methods or ()):
                found.append((method, context.path or "", context))
    return found


def concrete(path: str, edition_id: int) -> str:
    path = path.replace("{edition_id}", str(edition_id)).replace("{name}", "console.css")
    return re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", path)


def app_of(staff_web: StaffWeb) -> FastAPI:
    server = staff_web.live.server
    assert server is not None
    app = server.config.app
    assert isinstance(app, FastAPI)
    return app


def edition_version(staff_web: StaffWeb) -> tuple[str, int]:
    with staff_web.web.session() as session:
        edition = session.get(Edition, staff_web.edition_id)
        assert edition is not None
        return edition.status, edition.version


def test_every_console_route_depends_on_the_session_and_every_form_on_its_token(
    staff_web: StaffWeb,
) -> None:
    routes = console_routes(app_of(staff_web))
    guarded = [(m, p) for m, p, r in routes if signed_in in set(calls(r.dependant))]
    public = {p for m, p, r in routes if (m, p) not in set(guarded)}
    assert public == PUBLIC_STAFF
    forms = [(m, p) for m, p, r in routes if m == "POST" and p not in PUBLIC_STAFF]
    assert all(
        console_csrf in set(calls(r.dependant)) for m, p, r in routes if (m, p) in set(forms)
    )
    assert len(forms) >= 14 and len(guarded) >= 22


def test_an_anonymous_visitor_is_sent_to_the_sign_in_page_from_every_route(
    staff_web: StaffWeb,
) -> None:
    anonymous = staff_web.client()
    routes = [(m, p) for m, p, _ in console_routes(app_of(staff_web)) if p not in PUBLIC_STAFF]
    for method, path in routes:
        url = concrete(path, staff_web.edition_id)
        answer = anonymous.request(method, url, data={"csrf_token": "x", "text": "hijacked"})
        assert answer.status_code == 303, (method, path, answer.text[:300])
        location = answer.headers["location"]
        back = url if method == "GET" else "/staff"
        assert location == "/staff/login?" + urlencode({"next": back}), (method, path, location)
    assert edition_version(staff_web) == ("draft", 1)


def test_after_signing_in_the_visitor_is_back_on_the_page_they_asked_for(
    staff_web: StaffWeb,
) -> None:
    client = staff_web.client()
    wanted = f"/staff/editions/{staff_web.edition_id}?variant=Europe"
    first = client.get(wanted)
    assert first.status_code == 303
    login = client.get(first.headers["location"])
    assert 'name="next" value="/staff/editions/1?variant=Europe"' in login.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    answer = client.post(
        "/staff/login",
        data={
            "email": EDITOR_EMAIL,
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": wanted,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == wanted


@pytest.mark.parametrize("token", [None, "", "not-the-sessions-token"])
def test_every_console_form_without_the_sessions_csrf_token_is_403_and_changes_nothing(
    staff_web: StaffWeb, token: str | None
) -> None:
    publisher = sign_in(staff_web)
    staff_web.web.confirm("reader@example.com")
    with staff_web.web.session() as session:
        reader = find_by_email(session, "reader@example.com")
        assert reader is not None
        public_id = reader.public_id
    forms = [p for m, p, _ in console_routes(app_of(staff_web)) if m == "POST"]
    forms = [p for p in forms if p not in PUBLIC_STAFF]
    for path in forms:
        url = concrete(path, staff_web.edition_id).replace(
            "0123456789abcdef0123456789abcdef", public_id
        )
        data = {"text": "x", "article": "1", "to": "a@example.com", "confirm": "reader@example.com"}
        if token is not None:
            data["csrf_token"] = token
        answer = publisher.client.post(url, data=data)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "Reload the page" in answer.text, path
    assert edition_version(staff_web) == ("draft", 1)
    with staff_web.web.session() as session:
        assert find_by_email(session, "reader@example.com") is not None
    # Another session's token is no better: each session has its own.
    other = sign_in(staff_web, EDITOR_EMAIL)
    stolen = publisher.client.post(
        f"/staff/editions/{staff_web.edition_id}/intro",
        data={"csrf_token": other.csrf, "text": "x"},
    )
    assert stolen.status_code == 403


def test_an_editor_sees_no_approve_send_or_erase_and_a_forged_one_is_refused(
    staff_web: StaffWeb,
) -> None:
    e = staff_web.edition_id
    editor = sign_in(staff_web, EDITOR_EMAIL)
    page = editor.get(f"/staff/editions/{e}").text
    assert f"/staff/editions/{e}/intro" in page and "Send a test" in page  # editors edit drafts
    for publisher_only in ("/approve", '/send"', "/cancel", "/skip", "Approve edition"):
        assert publisher_only not in page, publisher_only
    assert "A publisher approves it" in page

    forged = editor.post(f"/staff/editions/{e}/approve")
    assert forged.status_code == 403
    assert "eddie.editor@meridianreview.example is an editor: only a publisher may approve" in (
        forged.text
    )
    for action in ("unapprove", "cancel", "send", "send/cancel", "send/resume"):
        assert editor.post(f"/staff/editions/{e}/{action}").status_code == 403, action
    assert editor.post(f"/staff/editions/{e}/skip", reason="no").status_code == 403
    assert edition_version(staff_web) == ("draft", 1)

    staff_web.web.confirm("reader@example.com")
    with staff_web.web.session() as session:
        reader = find_by_email(session, "reader@example.com")
        assert reader is not None
        public_id = reader.public_id
    person = editor.get(f"/staff/subscribers/{public_id}")
    assert person.status_code == 200 and "/erase" not in person.text
    assert editor.get(f"/staff/subscribers/{public_id}/erase").status_code == 403
    erase = editor.post(f"/staff/subscribers/{public_id}/erase", confirm="reader@example.com")
    assert erase.status_code == 403 and "only a publisher may erase" in erase.text
    with staff_web.web.session() as session:
        assert find_by_email(session, "reader@example.com") is not None


def test_an_editor_cannot_edit_an_approved_edition(staff_web: StaffWeb) -> None:
    e = staff_web.edition_id
    sign_in(staff_web).post(f"/staff/editions/{e}/approve")
    editor = sign_in(staff_web, EDITOR_EMAIL)
    page = editor.get(f"/staff/editions/{e}").text
    assert f"/staff/editions/{e}/intro" not in page and "only a publisher can change it" in page
    refused = editor.post(f"/staff/editions/{e}/intro", text="Late")
    assert refused.status_code == 403 and "a publisher must unapprove it first" in refused.text
    assert edition_version(staff_web)[0] == "approved"


def test_a_signed_out_session_is_over(staff_web: StaffWeb) -> None:
    publisher = sign_in(staff_web)
    home = publisher.get("/staff")
    logout = re.search(
        r'action="/staff/logout"[^>]*>\s*<input type="hidden" name="csrf_token" '
        r'value="([^"]+)"',
        home.text,
    )
    assert logout is not None
    assert (
        publisher.client.post("/staff/logout", data={"csrf_token": logout.group(1)}).status_code
        == 303
    )
    assert publisher.get("/staff").status_code == 303
    assert (
        publisher.post(f"/staff/editions/{staff_web.edition_id}/intro", text="x").status_code == 303
    )


def csp(answer_headers: dict[str, str]) -> dict[str, str]:
    policy = answer_headers["content-security-policy"]
    return {d.split()[0]: d.strip() for d in policy.split(";") if d.strip()}


def test_console_pages_load_scripts_and_styles_from_our_origin_only(staff_web: StaffWeb) -> None:
    publisher = sign_in(staff_web)
    e = staff_web.edition_id
    for path in ("/staff", f"/staff/editions/{e}", "/staff/history", "/staff/subscribers"):
        answer = publisher.get(path)
        policy = csp(dict(answer.headers))
        assert policy["default-src"] == "default-src 'none'"
        assert policy["script-src"] == "script-src 'self'", path
        assert policy["style-src"].startswith("style-src 'self' 'sha256-"), path
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert answer.headers["x-frame-options"] == "DENY"
        assert ("frame-src" in policy) == path.startswith("/staff/editions/"), path
        html = answer.text
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], path  # no inline script
        assert re.findall(r"\sstyle=", html) == [] and re.findall(r"\son[a-z]+=", html) == []
        assert re.findall(r'(?:src|href)="(?:https?:)?//', html.split("<main")[0]) == []
    css = publisher.get("/staff/assets/console.css")
    js = publisher.get("/staff/assets/console.js")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert css.headers["cache-control"] == "private, no-cache"
    assert publisher.get("/staff/assets/other.js").status_code == 404


def test_the_preview_is_framed_by_our_pages_only_and_runs_nothing(staff_web: StaffWeb) -> None:
    publisher = sign_in(staff_web)
    answer = publisher.get(f"/staff/preview/{staff_web.edition_id}")
    assert answer.status_code == 200 and answer.text.startswith("<!doctype html>")
    policy = csp(dict(answer.headers))
    assert policy["frame-ancestors"] == "frame-ancestors 'self'"
    assert policy["sandbox"].startswith("sandbox")
    assert "script-src" not in policy and policy["default-src"] == "default-src 'none'"
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    missing = publisher.get("/staff/preview/999")
    assert missing.status_code == 404 and missing.text == "No preview: no edition with id 999\n"
    assert missing.headers["x-frame-options"] == "DENY"


def test_under_https_the_session_and_message_cookies_are_secure(
    tmp_path: Path, db_path: Path
) -> None:
    """Behind a TLS proxy (base_url https): the session cookie is `__Host-` with Secure,
    HttpOnly and SameSite=Lax; the message after a change is Secure and HttpOnly too, and the
    redirect starts with base_url. (This test talks plain http to the app, so it sends the
    Secure cookies by hand, as a browser would over TLS.)"""
    staff_web = start_staff_web(tmp_path, db_path, web={"base_url": "https://news.example"})
    try:
        client = staff_web.client()
        login = client.get("/staff/login")
        nonce = login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        form = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert form is not None
        answer = client.post(
            "/staff/login",
            data={"email": PUBLISHER_EMAIL, "password": PASSWORD, "csrf_token": form.group(1)},
            headers={"Cookie": f"__Host-digest_csrf={nonce}"},
        )
        assert answer.status_code == 303
        session_cookie = answer.headers["set-cookie"]
        assert session_cookie.startswith("__Host-digest_staff=")
        attributes = {a.strip().lower() for a in session_cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
        cookie = {"Cookie": session_cookie.split(";")[0]}
        home = client.get("/staff", headers=cookie)
        assert home.status_code == 200
        changed = client.post(
            f"/staff/editions/{staff_web.edition_id}/intro",
            data={"csrf_token": page_token(home.text), "text": "Over TLS"},
            headers=cookie,
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == "https://news.example/staff/editions/1#texts"
        flash = changed.headers["set-cookie"]
        assert flash.startswith("digest_staff_flash=")
        flags = {a.strip().lower() for a in flash.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/staff"} <= flags
    finally:
        staff_web.close()
