"""Request bodies are held to their route's limit while they stream (issue 19, item 1): a
chunked body has no Content-Length to check, so the server counts what arrives, stops reading
at the limit and answers 413. The webhook looks at its signature headers before it reads a
byte. Slow clients are dropped: headers and bodies have a time limit.

Everything here runs against uvicorn on 127.0.0.1 with a raw socket client (tests/web/rawhttp):
an HTTP library sends the whole body before it looks for an answer, a server does not wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st
from sendgrid.helpers.eventwebhook import EventWebhook

from digest.web.bodies import API_LIMIT, DEFAULT_LIMIT, WEBHOOK_LIMIT
from digest.web.webhooks import verify_digest
from subscribers.lifecycle import find_by_email
from subscribers.tokens import UNSUBSCRIBE, make_token
from tests.fakes.sendgrid import FakeSendGrid
from tests.subscribers_helpers import Web, csrf_token, start_web
from tests.web import rawhttp

MB = 1 << 20
# What a client can push into the kernel's buffers (both ends, loopback) before it notices
# that the server stopped reading: the server itself holds at most its limit.
BUFFERS = 16 * MB
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@pytest.fixture(name="fake")
def fake_fixture() -> Iterator[FakeSendGrid]:
    with FakeSendGrid("SG.k") as fake:
        yield fake


@pytest.fixture(name="hooked")
def hooked_fixture(tmp_path: Path, db_path: Path, fake: FakeSendGrid) -> Iterator[Web]:
    """The app with the webhook's key configured, and a generous per-IP limit."""
    delivery = {
        "backend": "outbox",
        "outbox_dir": str(tmp_path / "outbox"),
        "webhook_public_key": fake.public_key,
    }
    running, live = start_web(
        tmp_path, db_path, delivery=delivery, web={"subscribe_ip_limit": 1000}
    )
    yield running
    live.stop()
    running.close()


def _form_headers(web: Web, kind: str) -> list[tuple[str, str]]:
    page = web.client.get("/subscribe")
    cookie = page.cookies.get("digest_csrf") or ""
    content = (
        "application/x-www-form-urlencoded" if kind == "form" else "multipart/form-data; boundary=b"
    )
    return [("Content-Type", content), ("Cookie", f"digest_csrf={cookie}")]


def _one_click_path(web: Web) -> str:
    web.client.post("/api/subscribe", json={"email": "big.body@example.com"})
    with web.session() as session:
        sub = find_by_email(session, "big.body@example.com")
        assert sub is not None
        return f"/u/{make_token(web.keys, UNSUBSCRIBE, sub.public_id, web.clock())}"


def _signed_headers(fake: FakeSendGrid) -> list[tuple[str, str]]:
    """Well-formed, fresh signature headers (that do not match the body that follows)."""
    stamp = str(int(time.time()))
    return [
        ("Content-Type", "application/json"),
        (SIGNATURE, fake.sign("[]", stamp)),
        (TIMESTAMP, stamp),
    ]


# A file part that never ends: the form parser spools files to disk.
MULTIPART_FILE = (
    b'--b\r\nContent-Disposition: form-data; name="upload"; filename="z.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
ROUTES = ["/api/subscribe", "/api/resend", "form", "multipart", "one-click", "webhook"]


def _target(web: Web, fake: FakeSendGrid, route: str) -> tuple[str, list[tuple[str, str]], int]:
    """Path, headers and the limit of each kind of request the app takes a body on."""
    if route.startswith("/api/"):
        return route, [("Content-Type", "application/json")], API_LIMIT
    if route in ("form", "multipart"):
        return "/subscribe", _form_headers(web, route), DEFAULT_LIMIT
    if route == "one-click":
        kind = ("Content-Type", "application/x-www-form-urlencoded")
        return _one_click_path(web), [kind], DEFAULT_LIMIT
    return "/webhooks/sendgrid", _signed_headers(fake), WEBHOOK_LIMIT


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    hooked: Web, fake: FakeSendGrid, route: str
) -> None:
    path, headers, limit = _target(hooked, fake, route)
    prefix = MULTIPART_FILE if route == "multipart" else b""
    answer = rawhttp.send_body(hooked.url, path, headers, total=200 * MB, prefix=prefix)
    assert answer.status == 413
    assert answer.closes  # the rest of the body is not read: the connection ends
    assert answer.sent <= limit + BUFFERS, f"the server read {answer.sent:,} bytes"
    for name in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert name in answer.headers


@pytest.mark.parametrize("route", ROUTES)
def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    hooked: Web, fake: FakeSendGrid, route: str
) -> None:
    path, headers, limit = _target(hooked, fake, route)
    with rawhttp.connect(hooked.url) as sock:
        sock.sendall(rawhttp.head(path, [*headers, ("Content-Length", str(limit + 1))]))
        answer = rawhttp.read_answer(sock)  # no body was sent: the answer cannot wait for one
    assert answer.status == 413 and answer.closes


@pytest.mark.parametrize("route", ["/api/subscribe", "form", "one-click", "webhook"])
def test_a_chunked_body_within_the_limit_is_read_as_before(
    hooked: Web, fake: FakeSendGrid, route: str
) -> None:
    path, headers, _ = _target(hooked, fake, route)
    if route == "webhook":
        stamp = str(int(time.time()))
        body = b"[]"
        headers = [(SIGNATURE, fake.sign("[]", stamp)), (TIMESTAMP, stamp)]
    elif route == "form":
        token = csrf_token(hooked.client.get("/subscribe").text)
        version = hooked.settings.subscribers.consent_text_version
        body = (
            f"email=chunked%40example.com&sections=Asia&csrf_token={token}"
            f"&consent_text_version={version}"
        ).encode()
        headers = _form_headers_with(hooked, token)
    elif route == "one-click":
        body = b"List-Unsubscribe=One-Click"
    else:
        body = json.dumps({"email": "chunked.json@example.com"}).encode()
    answer = rawhttp.send_body(hooked.url, path, headers, body=body)
    assert answer.status in (200, 202, 303), answer.body


def _form_headers_with(web: Web, token: str) -> list[tuple[str, str]]:
    cookie = web.client.cookies.get("digest_csrf") or ""
    return [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", f"digest_csrf={cookie}"),
    ]


def test_the_webhook_refuses_missing_signature_headers_before_reading_the_body(
    hooked: Web,
) -> None:
    with rawhttp.connect(hooked.url) as sock:
        sock.sendall(rawhttp.head("/webhooks/sendgrid", [("Transfer-Encoding", "chunked")]))
        answer = rawhttp.read_answer(sock)  # no body at all: it must not be waited for
    assert answer.status == 401 and answer.closes


@pytest.mark.parametrize(
    ("stamp", "signature"),
    [
        ("1000000000", None),  # 2001: outside the replay window
        ("not-a-number", None),
        (None, "%%% not base64 %%%"),
        (None, "QUJD"),  # base64, but three bytes are no ECDSA signature
    ],
)
def test_the_webhook_refuses_bad_signature_headers_before_reading_the_body(
    hooked: Web, fake: FakeSendGrid, stamp: str | None, signature: str | None
) -> None:
    now = str(int(time.time()))
    headers = [
        ("Transfer-Encoding", "chunked"),
        (SIGNATURE, signature or fake.sign("[]", stamp or now)),
        (TIMESTAMP, stamp or now),
    ]
    with rawhttp.connect(hooked.url) as sock:
        sock.sendall(rawhttp.head("/webhooks/sendgrid", headers))
        answer = rawhttp.read_answer(sock)
    assert answer.status == 401 and answer.closes


def test_the_unconfigured_webhook_answers_before_reading_the_body(web: Web) -> None:
    with rawhttp.connect(web.url) as sock:
        sock.sendall(rawhttp.head("/webhooks/sendgrid", [("Transfer-Encoding", "chunked")]))
        answer = rawhttp.read_answer(sock)
    assert answer.status == 503


def test_a_signed_chunked_batch_is_processed(hooked: Web, fake: FakeSendGrid) -> None:
    events = [
        {"event": "open", "email": "x@example.com", "sg_event_id": f"e{i}", "timestamp": 1}
        for i in range(2000)
    ]
    payload = json.dumps(events)
    stamp = str(int(time.time()))
    headers = [(SIGNATURE, fake.sign(payload, stamp)), (TIMESTAMP, stamp)]
    answer = rawhttp.send_body(hooked.url, "/webhooks/sendgrid", headers, body=payload.encode())
    assert answer.status == 200
    assert json.loads(answer.body)["received"] == 2000


def _timed_web(tmp_path: Path, db_path: Path, **web: float) -> Iterator[Web]:
    running, live = start_web(tmp_path, db_path, web=web)
    yield running
    live.stop()
    running.close()


@pytest.fixture(name="slow_body_web")
def slow_body_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """Bodies get half a second (headers the default 10 s, so that only the body is late)."""
    yield from _timed_web(tmp_path, db_path, body_timeout_s=0.5)


@pytest.fixture(name="slow_web")
def slow_web_fixture(tmp_path: Path, db_path: Path) -> Iterator[Web]:
    """Headers get one second."""
    yield from _timed_web(tmp_path, db_path, header_timeout_s=1.0)


def test_a_body_that_stops_arriving_is_answered_408_and_dropped(slow_body_web: Web) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", "100")]
    with rawhttp.connect(slow_body_web.url) as sock:
        sock.sendall(rawhttp.head("/api/subscribe", headers) + b'{"email": ')
        answer = rawhttp.read_answer(sock)
        assert answer.status == 408 and answer.closes
        assert rawhttp.closed_by_server(sock)


def test_headers_that_stop_arriving_are_dropped(slow_web: Web) -> None:
    with rawhttp.connect(slow_web.url) as sock:
        sock.sendall(b"POST /api/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        assert rawhttp.closed_by_server(sock)


def test_a_connection_that_never_sends_a_request_is_dropped(slow_web: Web) -> None:
    with rawhttp.connect(slow_web.url) as sock:
        assert rawhttp.closed_by_server(sock)


def test_a_prompt_client_is_not_dropped_between_requests(slow_web: Web) -> None:
    """The header clock starts with a request's first byte: keep-alive keeps working."""
    with rawhttp.connect(slow_web.url) as sock:
        for _ in range(3):
            sock.sendall(rawhttp.head("/healthz", [], method="GET"))
            assert rawhttp.read_answer(sock).status == 200


SIGNER = FakeSendGrid("SG.k")  # only its key: the server is never started


@given(st.text(max_size=300), st.text("0123456789", min_size=1, max_size=12), st.booleans())
def test_the_streamed_check_agrees_with_sendgrids_helper(
    payload: str, stamp: str, tamper: bool
) -> None:
    signature = SIGNER.sign(payload, stamp)
    body = payload + ("x" if tamper else "")
    digest = hashes.Hash(hashes.SHA256())
    digest.update((stamp + body).encode("utf-8"))
    ours = verify_digest(SIGNER.public_key, digest.finalize(), signature)
    assert ours == EventWebhook(SIGNER.public_key).verify_signature(body, signature, stamp)
    assert ours is not tamper
