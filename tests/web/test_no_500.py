"""Any input gives a 4xx, never a 500 (issue 19, item 2), on SQLite and on PostgreSQL.

A hypothesis test throws generated JSON (nested, huge and non-finite numbers, NUL bytes, lone
surrogates, wrong types, the right shape with odd values) at every JSON route of a live app:
the JSON API, and the webhook with a valid signature (so that the events themselves are what
gets tested). Then the cases the security review reproduced, one by one, and a 500 that still
carries the security headers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.hashes import SHA256
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from digest.config import Settings
from digest.send.eventdata import MAX_ID
from digest.store.db import make_engine, upgrade
from digest.store.models import WebhookEvent
from digest.web.app import create_app
from tests.fakes.sendgrid import FakeSendGrid
from tests.subscribers_helpers import (
    SECTIONS,
    LiveServer,
    Web,
    bound_socket,
    csrf_token,
    start_web,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy", "cache-control")


@dataclass
class Target:
    url: str
    client: httpx.Client
    signer: FakeSendGrid
    db: str
    database_url: str
    web: Web

    def api(self, path: str, body: bytes) -> httpx.Response:
        response = self.client.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
        # The confirmation email goes out after the answer, and making its Message-ID uses
        # the `random` module: let it finish before hypothesis draws the next example.
        self.web.settle()
        return response

    def webhook(self, payload: bytes) -> httpx.Response:
        """POST `payload` with a valid signature over its exact bytes (UTF-8 or not)."""
        stamp = str(int(time.time()))
        signed = self.signer.signing_key.sign(stamp.encode() + payload, ECDSA(SHA256()))
        headers = {SIGNATURE: base64.b64encode(signed).decode(), TIMESTAMP: stamp}
        return self.client.post("/webhooks/sendgrid", content=payload, headers=headers)


def _pg_url(postgres_url: str, schema: str) -> Iterator[str]:
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(
    name="target",
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def target_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, template_db: Path
) -> Iterator[Target]:
    """One live app per database for the whole module (hypothesis runs many examples)."""
    tmp = tmp_path_factory.mktemp(f"no500-{request.param}")
    db_path = tmp / "digest.db"
    db_path.write_bytes(template_db.read_bytes())
    signer = FakeSendGrid("SG.k")  # its key signs; its server is never started
    delivery = {
        "backend": "outbox",
        "outbox_dir": str(tmp / "outbox"),
        "webhook_public_key": signer.public_key,
    }
    overrides: dict[str, Any] = {"delivery": delivery, "web": {"subscribe_ip_limit": 1_000_000}}
    urls: Iterator[str] | None = None
    if request.param == "postgres":
        urls = _pg_url(request.getfixturevalue("postgres_url"), f"no500_{uuid.uuid4().hex[:8]}")
        overrides["database"] = {"url": next(urls)}
    web, live = start_web(tmp, db_path, **overrides)
    try:
        yield Target(web.url, web.client, signer, request.param, web.settings.database_url, web)
    finally:
        live.stop()
        web.close()
        if urls is not None:
            next(urls, None)


# --- generated JSON -----------------------------------------------------------------------------

ODD_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40
) | st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "x" * 400, "[link=x]y[/link]", "\u202e", "test", "0", "-1"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats()  # NaN and +-Infinity included: json.dumps writes them, JSON has no such thing
    | ODD_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ADDRESS = st.from_regex(
    r"[a-z0-9.+_-]{1,20}@[a-z0-9-]{1,12}\.(com|org|example)", fullmatch=True
) | (st.sampled_from(["victim+1@gmail.com", "a@b", "a\x00@example.com", '"q u o t e"@example.com']))
SUBSCRIBE = st.fixed_dictionaries(
    {},
    optional={
        "email": ADDRESS | JSON,
        "name": ODD_TEXT | JSON,
        "sections": st.lists(st.sampled_from(SECTIONS), max_size=3) | JSON,
        "consent_text_version": st.just("1") | JSON,
        "unexpected": JSON,
    },
)
EVENT = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["open", "click", "bounce", "dropped", "spamreport"]) | JSON,
        "sg_event_id": st.text(min_size=1, max_size=12) | JSON,
    },
    optional={
        "email": ADDRESS | JSON,
        "timestamp": st.sampled_from([1e20, -1e15, 1_700_000_000]) | JSON,
        "edition": st.sampled_from(["1", str(MAX_ID + 1), "test"]) | JSON,
        "delivery": st.integers(-(2**70), 2**70) | st.sampled_from(["1", "test"]) | JSON,
        "type": st.sampled_from(["bounce", "blocked"]) | JSON,
        "reason": ODD_TEXT | JSON,
        "url": ODD_TEXT | JSON,
        "sg_machine_open": JSON,
    },
)
# What no generator above makes: bodies that are not JSON, or JSON past any parser's limits.
RAW = st.sampled_from(
    [
        b"[" * 5000 + b"]" * 5000,  # 10 KB of nested arrays
        b'{"email": ' + b"9" * 5000 + b"}",  # a 5,000-digit number
        b'{"email": "a@example.com", "name": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"email": NaN}',
        b'{"email": "x@example.com"',
        b"\xff\xfe\x00",
        b"",
    ]
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@settings(max_examples=60)
@given(
    body=SUBSCRIBE.map(_dumps) | JSON.map(_dumps) | RAW,
    path=st.sampled_from(["/api/subscribe", "/api/resend"]),
)
def test_no_json_body_makes_the_api_answer_5xx(target: Target, body: bytes, path: str) -> None:
    response = target.api(path, body)
    assert response.status_code < 500, (target.db, body[:200], response.text)
    assert response.headers["content-type"] == "application/json"


@settings(max_examples=60)
@given(payload=st.lists(EVENT | JSON, max_size=6).map(_dumps) | JSON.map(_dumps) | RAW)
def test_no_signed_batch_makes_the_webhook_answer_5xx(target: Target, payload: bytes) -> None:
    response = target.webhook(payload)
    assert response.status_code < 500, (target.db, payload[:200], response.text)


# --- the reproduced cases -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/subscribe", "/api/resend"])
@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"email": ' + b"9" * 5000 + b"}"],
    ids=["10 KB nested array", "5000-digit number"],
)
def test_what_used_to_be_a_500_on_the_api_is_a_400(target: Target, path: str, body: bytes) -> None:
    response = target.api(path, body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("the body is not JSON")


def _good(n: int) -> dict[str, Any]:
    return {"event": "open", "email": f"good{n}@example.com", "sg_event_id": f"good-{uuid.uuid4()}"}


BAD_EVENTS = {
    "nested": {"event": "open", "sg_event_id": "n", "category": [[[["deep"]]]], "url": [[1]]},
    "timestamp 1e20": {"event": "open", "sg_event_id": "t", "timestamp": 1e20},
    "timestamp NaN": {"event": "open", "sg_event_id": "t", "timestamp": float("nan")},
    "timestamp Infinity": {"event": "open", "sg_event_id": "t", "timestamp": float("inf")},
    "timestamp -1e15": {"event": "open", "sg_event_id": "t", "timestamp": -1e15},
    "delivery 2**70": {"event": "bounce", "sg_event_id": "d", "delivery": 2**70, "edition": "1"},
    "edition past INTEGER": {"event": "open", "sg_event_id": "e", "edition": str(MAX_ID + 1)},
    "NUL in the reason": {"event": "dropped", "sg_event_id": "z", "reason": "a\x00b"},
    "lone surrogate": {"event": "open", "sg_event_id": "\ud800"},
}


@pytest.mark.parametrize("bad", list(BAD_EVENTS), ids=list(BAD_EVENTS))
def test_a_bad_event_is_skipped_and_counted_and_its_batch_processed(
    target: Target, bad: str
) -> None:
    good = [_good(1), _good(2)]
    events = [good[0], BAD_EVENTS[bad], good[1]]
    response = target.webhook(json.dumps(events, allow_nan=True).encode())
    assert response.status_code == 200, response.text
    assert response.json() | {"received": 3, "new": 2, "invalid": 1} == response.json()
    engine = make_engine(target.database_url)
    with engine.connect() as conn:
        ids = [e["sg_event_id"] for e in good]
        stored = conn.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.sg_event_id.in_(ids))
        )
    engine.dispose()
    assert stored == 2


def test_a_500_carries_the_security_headers(settings: Settings) -> None:
    app: FastAPI = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    live = LiveServer(bound_socket())
    live.start(app)
    try:
        response = httpx.get(f"{live.url}/boom", timeout=10)
    finally:
        live.stop()
    assert response.status_code == 500
    assert "a bug" not in response.text and "Traceback" not in response.text
    for name in HEADERS:
        assert name in response.headers, name


@pytest.mark.parametrize("field", ["email", "name", "sections", "consent_text_version"])
def test_a_nul_byte_is_a_400_not_a_driver_error(target: Target, field: str) -> None:
    """On PostgreSQL a NUL in a text column is a driver error; it must never get that far."""
    body: dict[str, Any] = {"email": "nul@example.com", "name": "Nul", "sections": ["Asia"]}
    body[field] = ["As\x00ia"] if field == "sections" else "nu\x00l@example.com"
    response = target.api("/api/subscribe", json.dumps(body).encode())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"].split(".")[0] == field
    page = target.client.get("/subscribe")
    form = target.client.post(
        "/subscribe",
        data={
            "email": "nul@example.com",
            "name": "Nul",
            "sections": "Asia",
            "consent_text_version": "1",
            "csrf_token": csrf_token(page.text),
        }
        | ({field: "As\x00ia"} if field == "sections" else {field: "nu\x00l@example.com"}),
    )
    assert 400 <= form.status_code < 500, form.text
