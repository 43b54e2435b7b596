"""The SMTP backend against a real aiosmtpd server on 127.0.0.1: STARTTLS with a certificate
made in the test, AUTH, DKIM verified with the published key, per-recipient refusals."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from pydantic import SecretStr

from digest.backends import get_backend
from digest.backends.base import BackendConfigError, Batch, Recipient, TransientError
from digest.backends.smtp import DkimKey, SmtpBackend
from digest.errors import ConfigError
from tests.fakes.smtp import PASSWORD, USER, Handler, dkim_keys, self_signed_cert, smtp_server
from tests.send_helpers import with_delivery, with_values

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def server(handler: Handler, tls: tuple[Path, Path]) -> Iterator[tuple[str, int]]:
    controller = smtp_server(handler, *tls)
    controller.start()
    try:
        yield controller.hostname, controller.port
    finally:
        controller.stop()


def _backend(server: tuple[str, int], tls: tuple[Path, Path], **kw) -> SmtpBackend:
    options = {"username": USER, "password": PASSWORD, "ca_file": str(tls[0]), "timeout": 5.0}
    options.update(kw)
    return SmtpBackend(server[0], server[1], clock=lambda: NOW, **options)  # type: ignore[arg-type]


def _batch(n: int = 2) -> Batch:
    long_line = "word " * 400  # one 2000-character line: quoted-printable must fold it
    recipients = [
        Recipient(
            delivery_id=i + 1,
            email=f"user{i}@example.com",
            substitutions={"%%unsubscribe_url%%": f"https://n.example/u/tok{i}"},
            headers={
                "List-Unsubscribe": f"<https://n.example/u/tok{i}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        for i in range(n)
    ]
    return Batch(
        batch_id="b",
        edition_id=3,
        subject="The Weekly Round-up",
        from_email="roundup@news.example",
        html=f'<p>{long_line}</p><a href="%%unsubscribe_url%%">unsubscribe</a>',
        text=f"{long_line}\nUnsubscribe: %%unsubscribe_url%%\n",
        recipients=recipients,
        from_name="The Review",
        headers={"List-Id": "Round-up <roundup.news.example>"},
    )


def _parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_starttls_login_and_one_connection_per_batch(server, tls, handler: Handler) -> None:
    statuses = _backend(server, tls).send_batch(_batch(3))
    assert [s.status for s in statuses] == ["accepted"] * 3
    assert handler.connections == 1
    assert [m[1] for m in handler.messages] == [[f"user{i}@example.com"] for i in range(3)]
    assert all(s.provider_id and s.provider_id.endswith("@news.example>") for s in statuses)


def test_messages_are_quoted_printable_text_first_with_personal_links(
    server, tls, handler: Handler
) -> None:
    _backend(server, tls).send_batch(_batch(1))
    raw = handler.messages[0][2]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = _parsed(raw)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in msg.iter_parts())
    assert "Unsubscribe: https://n.example/u/tok0" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert msg["List-Unsubscribe"] == "<https://n.example/u/tok0>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_dkim_signature_covers_the_unsubscribe_headers_and_verifies(
    server, tls, handler: Handler, tmp_path: Path
) -> None:
    key_path, record = dkim_keys(tmp_path)
    key = DkimKey.load(key_path, "digest2026", "news.example")
    _backend(server, tls, dkim_key=key).send_batch(_batch(1))
    raw = handler.messages[0][2]
    signature = _parsed(raw)["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in str(signature).split(";") if "=" in t)
    signed = {h.strip().lower() for h in tags["h"].replace(" ", "").split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= signed
    assert tags["d"] == "news.example" and tags["s"] == "digest2026"

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"digest2026._domainkey.news.example."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"tok0>", b"tokX>", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_refused_and_greylisted_recipients(server, tls, handler: Handler) -> None:
    handler.refuse["user0@example.com"] = "550 5.1.1 No such user"
    handler.refuse["user1@example.com"] = "451 4.7.1 Greylisted, try later"
    statuses = {s.delivery_id: s for s in _backend(server, tls).send_batch(_batch(3))}
    assert statuses[1].status == "rejected" and statuses[1].reason == "SMTP 550 5.1.1 No such user"
    assert statuses[2].status == "deferred" and "451" in (statuses[2].reason or "")
    assert statuses[3].status == "accepted"


def test_a_connection_lost_at_data_leaves_that_recipient_uncertain(
    server, tls, handler: Handler
) -> None:
    handler.drop_on_data.add("user1@example.com")
    statuses = {s.delivery_id: s.status for s in _backend(server, tls).send_batch(_batch(3))}
    assert statuses == {1: "accepted", 3: "deferred"}  # 2 is left out: uncertain


def test_a_wrong_password_is_a_configuration_error(server, tls) -> None:
    with pytest.raises(BackendConfigError, match="refused the login for 'mailer'") as refused:
        _backend(server, tls, password="wrong").send_batch(_batch(1))
    assert "wrong" not in str(refused.value)


def test_an_untrusted_certificate_is_refused(server, tls) -> None:
    with pytest.raises(BackendConfigError, match="certificate not trusted"):
        _backend(server, tls, ca_file=None).send_batch(_batch(1))


def test_no_server_is_transient(tls) -> None:
    from tests.fakes.smtp import free_port

    with pytest.raises(TransientError, match="cannot connect to SMTP server"):
        SmtpBackend("127.0.0.1", free_port(), ca_file=str(tls[0]), timeout=2).send_batch(_batch(1))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(tls, handler: Handler) -> None:
    controller = smtp_server(handler, *tls, implicit_tls=True)
    controller.start()
    try:
        backend = _backend((controller.hostname, controller.port), tls, security="ssl")
        assert [s.status for s in backend.send_batch(_batch(1))] == ["accepted"]
    finally:
        controller.stop()


def test_get_backend_builds_smtp_with_dkim(settings, tmp_path: Path, tls) -> None:
    key_path, _ = dkim_keys(tmp_path)
    s = with_delivery(
        settings,
        backend="smtp",
        smtp_username=USER,
        dkim_key_path=str(key_path),
        dkim_selector="sel",
        smtp_ca_file=str(tls[0]),
    )
    with pytest.raises(ConfigError, match="smtp_username is set but DIGEST_SMTP_PASSWORD"):
        get_backend(s)
    backend = get_backend(with_values(s, smtp_password=SecretStr(PASSWORD)))
    assert isinstance(backend, SmtpBackend) and PASSWORD not in repr(backend)
    assert backend.dkim_key is not None and backend.dkim_key.domain == "meridianreview.example"
    assert "PRIVATE" not in repr(backend.dkim_key)


def test_an_unreadable_dkim_key_is_a_configuration_error(settings, tmp_path: Path) -> None:
    s = with_delivery(
        settings, backend="smtp", dkim_key_path=str(tmp_path / "none.pem"), dkim_selector="sel"
    )
    with pytest.raises(ConfigError, match=r"dkim_key_path: cannot read .*none\.pem"):
        get_backend(s)


@pytest.mark.parametrize("backend", ["smtp", "sendgrid"])
def test_get_backend_refuses_an_http_base_url_off_loopback(settings, backend: str) -> None:
    web = settings.web.model_copy(update={"base_url": "http://news.example"})
    s = with_values(
        with_delivery(settings, backend=backend),
        web=web,
        sendgrid_api_key=SecretStr("SG.key"),
    )
    with pytest.raises(ConfigError, match=r"^\[web\] base_url: must start with https:// with"):
        get_backend(s)
    # the outbox writes files: http stays allowed there
    assert get_backend(with_delivery(s, backend="outbox")).name == "outbox"
