"""The SendGrid backend against the fake SendGrid on 127.0.0.1 (real HTTP, real library)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from digest.backends import get_backend
from digest.backends.base import (
    BackendConfigError,
    Batch,
    PermanentError,
    Recipient,
    TransientError,
)
from digest.backends.sendgrid import SendGridBackend
from digest.errors import ConfigError
from tests.fakes.sendgrid import FakeSendGrid, Fault, make_validator
from tests.send_helpers import with_delivery, with_values

KEY = "SG.test-key-do-not-log"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(KEY) as server:
        yield server


def _backend(fake: FakeSendGrid, **kw) -> SendGridBackend:
    now = datetime(2026, 11, 20, 14, tzinfo=UTC)
    return SendGridBackend(KEY, fake.url, clock=lambda: now, **kw)


def _batch(n: int = 3, **kw) -> Batch:
    recipients = [
        Recipient(
            delivery_id=100 + i,
            email=f"user{i}@example.com",
            substitutions={
                "%%unsubscribe_url%%": f"https://n.example/u/t{i}",
                "%%manage_url%%": f"https://n.example/manage/t{i}",
            },
            headers={
                "List-Unsubscribe": f"<https://n.example/u/t{i}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        for i in range(n)
    ]
    values = dict(
        batch_id="b1",
        edition_id=7,
        subject="The Weekly Round-up",
        html="<p>%%unsubscribe_url%%</p>",
        text="Unsubscribe: %%unsubscribe_url%%",
        from_email="roundup@news.example",
        from_name="The Review",
        reply_to="editors@news.example",
        headers={"List-Id": "r <r.n>"},
        recipients=recipients,
    )
    values.update(kw)
    return Batch(**values)  # type: ignore[arg-type]


def test_a_batch_is_accepted_with_the_message_id(fake: FakeSendGrid) -> None:
    statuses = _backend(fake).send_batch(_batch(3))
    assert [s.status for s in statuses] == ["accepted"] * 3
    message_id = statuses[0].provider_id
    assert message_id and {r.message_id for r in fake.received} == {message_id}
    assert [r.email for r in fake.received] == [f"user{i}@example.com" for i in range(3)]


def test_the_body_follows_the_rules(fake: FakeSendGrid) -> None:
    _backend(fake, click_tracking=True).send_batch(_batch(2))
    body = fake.bodies[0]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["tracking_settings"]["subscription_tracking"] == {"enable": False}
    assert body["tracking_settings"]["click_tracking"]["enable"] is True
    assert body["tracking_settings"]["open_tracking"] == {"enable": False}
    assert "asm" not in body
    assert body["headers"] == {"List-Id": "r <r.n>"}
    first = body["personalizations"][0]
    assert first["custom_args"] == {"edition": "7", "delivery": "100"}
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["substitutions"]["%%unsubscribe_url%%"] == "https://n.example/u/t0"
    assert "@" not in json.dumps([p["custom_args"] for p in body["personalizations"]])


def test_a_test_batch_is_marked_in_custom_args(fake: FakeSendGrid) -> None:
    _backend(fake).send_batch(_batch(1, test=True))
    assert fake.received[0].custom_args == {"edition": "7", "delivery": "test"}


def test_the_body_goes_as_json_text_that_reads_as_the_payload(fake: FakeSendGrid) -> None:
    backend = _backend(fake)
    batch = _batch(3)
    assert json.loads(backend.body(batch)) == backend.payload(batch)
    backend.send_batch(batch)
    assert fake.bodies == [backend.payload(batch)]


def test_the_fake_refuses_a_body_that_is_not_json_like_sendgrid(fake: FakeSendGrid) -> None:
    import http.client
    import urllib.parse

    where = urllib.parse.urlsplit(fake.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain"}
    conn.request("POST", "/v3/mail/send", b"{}", headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    assert response.status == 415
    assert answer["errors"][0]["message"] == "Content-Type should be application/json."


def test_a_400_keeps_sendgrids_words_and_names_the_recipient(fake: FakeSendGrid) -> None:
    fake.invalid.add("user1@example.com")
    with pytest.raises(PermanentError) as refused:
        _backend(fake).send_batch(_batch(3))
    assert "Does not contain a valid address." in str(refused.value)
    assert "personalizations.1.to.0.email" in str(refused.value)
    assert refused.value.bad_index == 1
    assert fake.received == []


def test_a_schema_violation_is_a_400(fake: FakeSendGrid) -> None:
    with pytest.raises(PermanentError, match=r"SendGrid 400: .*subject"):
        _backend(fake).send_batch(_batch(1, subject=""))


def test_a_wrong_key_is_a_configuration_error_without_the_key(fake: FakeSendGrid) -> None:
    backend = SendGridBackend("SG.wrong-key", fake.url)
    with pytest.raises(BackendConfigError) as refused:
        backend.send_batch(_batch(1))
    assert "401" in str(refused.value) and "SG.wrong-key" not in str(refused.value)
    assert "SG." not in repr(backend)


def test_413_is_permanent(fake: FakeSendGrid) -> None:
    fake.script(Fault(413, "content too large"))
    with pytest.raises(PermanentError, match="413: content too large") as refused:
        _backend(fake).send_batch(_batch(2))
    assert refused.value.bad_index is None


def test_429_carries_the_providers_wait(fake: FakeSendGrid) -> None:
    fault = Fault.rate_limited(retry_after=30)
    fault.headers["Retry-After"] = "12"
    fault.headers["X-RateLimit-Reset"] = str(
        int(datetime(2026, 11, 20, 14, tzinfo=UTC).timestamp()) + 20
    )
    fake.script(fault)
    with pytest.raises(TransientError) as refused:
        _backend(fake).send_batch(_batch(1))
    assert refused.value.retry_after == 20.0  # the longer of Retry-After and the reset
    assert not refused.value.maybe_sent


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(fake: FakeSendGrid, status: int) -> None:
    fake.script(Fault(status, "upstream trouble"))
    with pytest.raises(TransientError, match=f"SendGrid {status}: upstream trouble"):
        _backend(fake).send_batch(_batch(1))


def test_5xx_carries_the_providers_wait(fake: FakeSendGrid) -> None:
    reset = int(datetime(2026, 11, 20, 14, tzinfo=UTC).timestamp()) + 45
    fake.script(Fault(503, "busy", {"X-RateLimit-Reset": str(reset)}))
    with pytest.raises(TransientError) as refused:
        _backend(fake).send_batch(_batch(1))
    assert refused.value.retry_after == 45.0


def test_a_timeout_is_transient_and_maybe_sent(fake: FakeSendGrid) -> None:
    fake.script(Fault(202, delay=1.0, accept_first=True))
    with pytest.raises(TransientError) as refused:
        _backend(fake, timeout=0.2).send_batch(_batch(1))
    assert refused.value.maybe_sent


def test_a_dropped_connection_is_transient(fake: FakeSendGrid) -> None:
    fake.script(Fault(drop=True))
    with pytest.raises(TransientError) as refused:
        _backend(fake).send_batch(_batch(1))
    assert refused.value.maybe_sent


def test_nobody_listening_is_transient_and_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = SendGridBackend(KEY, f"http://127.0.0.1:{port}")
    with pytest.raises(TransientError, match="cannot reach SendGrid") as refused:
        backend.send_batch(_batch(1))
    assert not refused.value.maybe_sent


def test_get_backend_needs_the_api_key(settings) -> None:
    s = with_delivery(settings, backend="sendgrid")
    with pytest.raises(ConfigError, match="DIGEST_SENDGRID_API_KEY is not set"):
        get_backend(s)
    backend = get_backend(with_values(s, sendgrid_api_key=SecretStr(KEY)))
    assert isinstance(backend, SendGridBackend) and KEY not in repr(backend)


def test_the_fake_enforces_limits_the_schema_cannot(fake: FakeSendGrid) -> None:
    batch = _batch(2)
    doubled = Batch(**{**batch.__dict__, "recipients": [batch.recipients[0]] * 2})
    with pytest.raises(PermanentError, match="unique between to, cc, and bcc"):
        _backend(fake).send_batch(doubled)
    huge = Recipient(1, "big@example.com", substitutions={"%%x%%": "y" * 10_000})
    with pytest.raises(PermanentError, match="substitutions must be less than 10000 bytes"):
        _backend(fake).send_batch(_batch(1, recipients=[huge]))
    reserved = Recipient(2, "r@example.com", headers={"Subject": "no"})
    with pytest.raises(PermanentError, match="reserved"):
        _backend(fake).send_batch(_batch(1, recipients=[reserved]))


def test_the_fake_refuses_more_than_1000_personalizations(fake: FakeSendGrid) -> None:
    with pytest.raises(PermanentError, match="1000"):
        _backend(fake).send_batch(_batch(1001))


def test_both_validators_judge_bodies_alike(fake: FakeSendGrid) -> None:
    """The benchmark's compiled validator agrees with the reference one."""
    backend = _backend(fake)
    good = backend.payload(_batch(3))
    bad_bodies = [
        {**good, "subject": ""},
        {**good, "personalizations": []} | {"personalizations": [{"to": "nobody"}]},
        {**good, "from": {"name": "no email"}},
        {**good, "categories": ["a"] * 11},
        {**good, "personalizations": [{"to": [{"email": 5}]}]},
    ]
    reference, compiled = make_validator("jsonschema"), make_validator("jsonschema-rs")
    assert reference(good) == [] == compiled(good)
    for body in bad_bodies:
        assert bool(reference(body)) and bool(compiled(body)), body
