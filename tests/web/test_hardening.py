"""Issue 19 against the live app: no mail bombing through address spellings or IPv6 hopping,
nothing sent to an address that bounced or complained, a request's name and sections kept apart
until confirmed, names cleaned on the way in, HSTS and the __Host- cookie over https,
redirects built from base_url, and `digest serve`'s timeouts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.web.server import HeaderTimeoutProtocol
from subscribers.lifecycle import erase, find_by_email, suppress
from subscribers.models import BOUNCED, COMPLAINED, PENDING, UNSUBSCRIBED, Subscriber
from tests.conftest import TEST_SECRET
from tests.subscribers_helpers import SECTIONS, Web, csrf_token, start_web, web_settings

ACCEPTED = {
    "status": "accepted",
    "message": "If this address can be subscribed, an email with a confirmation link is on "
    "its way to it.",
}


def _web(tmp_path: Path, db_path: Path, **overrides: Any) -> Iterator[Web]:
    running, live = start_web(tmp_path, db_path, **overrides)
    yield running
    live.stop()
    running.close()


@pytest.fixture(name="open_web")
def open_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """No per-IP limit in the way: what is measured is the per-address one."""
    yield from _web(tmp_path, db_path, web={"subscribe_ip_limit": 10_000})


def _api(web: Web, email: str, **body: Any) -> int:
    response = web.client.post("/api/subscribe", json={"email": email, **body})
    assert response.json() == ACCEPTED
    return response.status_code


# --- item 3: no mail bombing -------------------------------------------------------------------


def test_spellings_of_one_inbox_get_one_confirmation_between_them(open_web: Web) -> None:
    spellings = [
        "victim@gmail.com",
        "victim+1@gmail.com",
        "victim+2@gmail.com",
        "Victim+3@GMAIL.com",
        "v.i.c.t.i.m@gmail.com",
        "vic.tim+4@googlemail.com",
    ] + [f"victim+{i}@gmail.com" for i in range(5, 12)]
    assert {_api(open_web, address) for address in spellings} == {202}
    assert len(open_web.messages()) == 1  # twelve requests in a second: one email
    for _ in range(4):  # the daily cap holds across the spellings too
        open_web.clock.advance(minutes=11)
        for address in spellings[:3]:
            _api(open_web, address)
    assert len(open_web.messages()) == open_web.settings.subscribers.confirm_daily_cap


def test_other_inboxes_are_not_held_back(open_web: Web) -> None:
    _api(open_web, "j.doe@example.com")
    _api(open_web, "jdoe@example.com")  # outside Gmail a dot makes another inbox
    assert len(open_web.messages()) == 2


@pytest.fixture(name="proxied_web")
def proxied_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """Behind a trusted proxy on 127.0.0.1, allowing three requests per client."""
    yield from _web(
        tmp_path,
        db_path,
        web={"subscribe_ip_limit": 3, "trusted_proxies": ["127.0.0.1"]},
    )


def _from(web: Web, ip: str, n: int) -> int:
    response = web.client.post(
        "/api/subscribe", json={"email": f"r{n}@example.com"}, headers={"X-Forwarded-For": ip}
    )
    return response.status_code


def test_an_ipv6_client_is_limited_per_slash_64(proxied_web: Web) -> None:
    """Hopping through a /64's addresses gives no new allowance; another /64 has its own."""
    hops = [f"2001:db8:1:2::{i:x}" for i in range(1, 5)]
    assert [_from(proxied_web, ip, n) for n, ip in enumerate(hops)] == [202, 202, 202, 429]
    assert _from(proxied_web, "2001:db8:1:3::1", 9) == 202
    assert [_from(proxied_web, f"192.0.2.{i}", 10 + i) for i in range(1, 5)] == [202] * 4


# --- item 4: nothing to an address that bounced or complained ----------------------------------


def _suppressed(web: Web, email: str, reason: str) -> None:
    _api(web, email)
    web.settle()
    with web.session() as session, session.begin():
        sub = find_by_email(session, email)
        assert sub is not None
        suppress(session, sub, reason, now=web.clock(), keys=[TEST_SECRET], source="test")
    web.clock.advance(days=2)  # past every per-address limit


@pytest.mark.parametrize(("reason", "status"), [("bounced", BOUNCED), ("complained", COMPLAINED)])
def test_a_bounced_or_complaining_address_gets_nothing_and_the_attempt_is_kept(
    open_web: Web, reason: str, status: str
) -> None:
    _suppressed(open_web, "gone@example.com", reason)
    sent = len(open_web.messages())
    assert _api(open_web, "gone@example.com", name="Someone", sections=["Asia"]) == 202
    form = open_web.subscribe("gone@example.com")
    new = open_web.subscribe("new.person@example.com")
    assert (form.status_code, form.headers["location"]) == (
        new.status_code,
        new.headers["location"],
    )  # answered exactly as any other address
    open_web.client.post("/api/resend", json={"email": "gone@example.com"})
    assert len(open_web.messages()) == sent + 1  # only new.person's confirmation
    with open_web.session() as session:
        sub = find_by_email(session, "gone@example.com")
        assert sub is not None and sub.status == status and sub.confirm_nonce is None
        events = [(c.event, (c.detail or {}).get("reason")) for c in sub.consents]
    assert events[-2:] == [("subscribe-refused", reason), ("subscribe-refused", reason)]


def test_an_erased_address_that_complained_is_not_stored_again(open_web: Web) -> None:
    _suppressed(open_web, "erased@example.com", "complained")
    with open_web.session() as session, session.begin():
        sub = find_by_email(session, "erased@example.com")
        assert sub is not None
        erase(session, sub, now=open_web.clock(), keys=[TEST_SECRET])
    sent = len(open_web.messages())
    assert _api(open_web, "erased@example.com") == 202
    assert len(open_web.messages()) == sent
    with open_web.session() as session:
        assert find_by_email(session, "erased@example.com") is None


def test_someone_who_unsubscribed_can_still_ask_to_come_back(open_web: Web) -> None:
    _suppressed(open_web, "left@example.com", "unsubscribed")
    sent = len(open_web.messages())
    _api(open_web, "left@example.com")
    assert len(open_web.messages()) == sent + 1


# --- item 5: a request does not rewrite stored data ---------------------------------------------


def test_an_unconfirmed_request_leaves_a_persons_data_alone_until_confirmed(open_web: Web) -> None:
    web = open_web
    web.client.post(
        "/api/subscribe", json={"email": "jane@example.com", "name": "Jane", "sections": ["Asia"]}
    )
    done = web.client.post(
        web.confirm_link(), data={"csrf_token": csrf_token(web.client.get(web.confirm_link()).text)}
    )
    assert "You are subscribed" in done.text
    with web.session() as session, session.begin():
        sub = find_by_email(session, "jane@example.com")
        assert sub is not None
        suppress(session, sub, "unsubscribed", now=web.clock(), keys=[TEST_SECRET], source="t")
    web.clock.advance(days=2)
    _api(web, "jane@example.com", name="Mallory", sections=["Europe", "Diplomacy"])
    with web.session() as session:
        sub = find_by_email(session, "jane@example.com")
        assert sub is not None and sub.status == UNSUBSCRIBED
        assert (sub.name, sub.sections) == ("Jane", ["Asia"])  # as Jane left them
        assert (sub.requested_name, sub.requested_sections) == ("Mallory", ["Europe", "Diplomacy"])
    target = web.confirm_link()
    page = web.client.get(target)
    assert "Sections: Europe, Diplomacy" in page.text and "Name: Mallory" in page.text
    web.client.post(target, data={"csrf_token": csrf_token(page.text)})
    with web.session() as session:
        sub = find_by_email(session, "jane@example.com")
        assert sub is not None
        assert (sub.name, sub.sections) == ("Mallory", ["Europe", "Diplomacy"])  # now confirmed
        assert sub.requested_name is None and sub.requested_sections is None


def test_a_new_address_keeps_its_request(open_web: Web) -> None:
    _api(open_web, "new@example.com", name="New Person", sections=["Asia"])
    with open_web.session() as session:
        sub = find_by_email(session, "new@example.com")
        assert sub is not None and sub.status == PENDING
        assert (sub.name, sub.sections) == ("New Person", ["Asia"])


# --- item 6: names cleaned on the way in --------------------------------------------------------


def test_a_name_from_the_form_or_the_api_is_cleaned(open_web: Web) -> None:
    hostile = "[link=https://evil.example]Call support[/link]\x1b[2J\r\nX-Injected: 1\u202e"
    _api(open_web, "api@example.com", name=hostile)
    open_web.subscribe("form@example.com", name=hostile)
    with open_web.session() as session:
        names = set(
            session.scalars(
                select(Subscriber.name).where(
                    Subscriber.email.in_(["api@example.com", "form@example.com"])
                )
            )
        )
    assert names == {"[link=https://evil.example]Call support[/link][2J X-Injected: 1"}


def test_a_nul_in_a_name_is_a_400_and_nothing_is_stored(open_web: Web) -> None:
    api = open_web.client.post("/api/subscribe", json={"email": "a@example.com", "name": "a\x00b"})
    assert api.status_code == 400 and api.json()["error"]["field"] == "name"
    form = open_web.subscribe("b@example.com", name="a\x00b")
    assert form.status_code == 400 and "NUL character" in form.text
    long = open_web.client.post(
        "/api/subscribe", json={"email": "c@example.com", "name": "x" * 201}
    )
    assert long.status_code == 422 and long.json()["error"]["field"] == "name"
    with open_web.session() as session:
        assert session.scalar(select(Subscriber.id)) is None


# --- item 7: https, redirects, timeouts ---------------------------------------------------------


@pytest.fixture(name="https_web")
def https_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """The app as it runs behind a TLS proxy: base_url https (this test talks to it in http)."""
    running, live = start_web(tmp_path, db_path, web={"base_url": "https://news.example"})
    yield running
    live.stop()
    running.close()


def test_https_adds_hsts_and_plain_http_does_not(https_web: Web, web: Web) -> None:
    for path in ("/subscribe", "/healthz", "/no-such-page"):
        assert https_web.client.get(path).headers["strict-transport-security"] == (
            "max-age=31536000"
        )
        assert "strict-transport-security" not in web.client.get(path).headers


def test_over_https_the_csrf_cookie_has_the_host_prefix_and_works(https_web: Web) -> None:
    page = https_web.client.get("/subscribe")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-digest_csrf=")
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"secure", "path", "httponly", "samesite"} <= attributes and "domain" not in attributes
    assert "Path=/" in cookie
    nonce = cookie.split(";")[0].split("=", 1)[1]
    https_web.client.cookies.clear()  # a Secure cookie is not sent over this test's plain http
    data = {
        "email": "tls@example.com",
        "sections": list(SECTIONS),
        "csrf_token": csrf_token(page.text),
        "consent_text_version": https_web.settings.subscribers.consent_text_version,
    }
    refused = https_web.client.post("/subscribe", data=data)
    assert refused.status_code == 403
    plain_name = https_web.client.post(
        "/subscribe", data=data, headers={"Cookie": f"digest_csrf={nonce}"}
    )
    assert plain_name.status_code == 403  # only the prefixed cookie counts
    done = https_web.client.post(
        "/subscribe", data=data, headers={"Cookie": f"__Host-digest_csrf={nonce}"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "https://news.example/subscribe/check-inbox"


def test_redirects_never_follow_the_host_header(web: Web) -> None:
    evil = {"Host": "evil.example"}
    assert web.client.get("/subscribe/", headers=evil).status_code == 404  # no slash redirect
    page = web.client.get("/subscribe")
    response = web.client.post(
        "/subscribe",
        headers=evil,
        data={
            "email": "host@example.com",
            "sections": list(SECTIONS),
            "csrf_token": csrf_token(page.text),
            "consent_text_version": web.settings.subscribers.consent_text_version,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{web.url}/subscribe/check-inbox"


def test_digest_serve_runs_with_the_configured_timeouts(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def run(server: Any, sockets: Any = None) -> None:  # `digest serve` binds, uvicorn serves
        seen.update(vars(server.config), bound=[s.getsockname()[1] for s in sockets])

    monkeypatch.setattr("uvicorn.Server.run", run)
    monkeypatch.setenv("DIGEST_WEB__HEADER_TIMEOUT_S", "7.5")
    monkeypatch.setenv("DIGEST_WEB__BODY_TIMEOUT_S", "12")
    with socket.socket() as probe:  # a port nobody uses (serve binds it itself)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    code, _, err = cli("serve", "--port", str(port))
    assert code == 0, err
    protocol = seen["http"]
    assert issubclass(protocol, HeaderTimeoutProtocol) and protocol.header_timeout_s == 7.5
    assert seen["port"] == port and seen["server_header"] is False
    assert seen["bound"] == [port]


def test_the_timeouts_are_settings(tmp_path: Path, db_path: Path) -> None:
    settings: Settings = web_settings(
        tmp_path, db_path, "http://127.0.0.1:1", web={"header_timeout_s": 3, "body_timeout_s": 4}
    )
    assert (settings.web.header_timeout_s, settings.web.body_timeout_s) == (3, 4)
