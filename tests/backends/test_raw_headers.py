"""List-Unsubscribe as receivers read it: the raw bytes of a real message, built by the SMTP and
outbox backends with a production-length https URL and a real token from `send.compose`, carry
`<https://…>` literally (never RFC 2047 encoded-words), and a DKIM signature over them verifies.
No test here decodes a header through a parser before looking at it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dkim
import pytest

from digest.backends.base import Batch, Recipient
from digest.backends.mime import build_message
from digest.backends.outbox import OutboxBackend
from digest.backends.smtp import DkimKey, SmtpBackend
from digest.config import Settings, load_settings
from digest.render.email import EditionView
from digest.send.claims import Claimed
from digest.send.compose import Composer, list_id
from tests.conftest import ROOT, TEST_SECRET
from tests.fakes.smtp import PASSWORD, USER, Handler, dkim_keys, self_signed_cert, smtp_server

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
BASE = "https://newsletter.meridianreview.example"
MAILTO = "unsubscribe@meridianreview.example"
SUBJECT = "Die Woche: Überblick über Europa, Asien und den Nahen Osten — Ausgabe 47"


@pytest.fixture
def prod_settings(tmp_path: Path) -> Settings:
    return load_settings(
        ROOT / "digest.toml",
        database={"url": f"sqlite:///{tmp_path / 'x.db'}"},
        web={"base_url": BASE},
        delivery={"backend": "outbox", "outbox_dir": str(tmp_path / "outbox")},
        secret_key=TEST_SECRET,
    )


def _recipients(settings: Settings, mailto: bool) -> list[Recipient]:
    if mailto:
        delivery = settings.delivery.model_copy(update={"unsubscribe_mailto": MAILTO})
        settings = settings.model_copy(update={"delivery": delivery})
    # recipients() uses no view: the per-recipient links only need the settings and keys.
    composer = Composer(settings, cast(EditionView, None), NOW, settings.secret_keys())
    rows = [Claimed(i + 1, f"reader{i}@example.com", "", uuid.uuid4().hex) for i in range(2)]
    return composer.recipients(rows)


def _batch(settings: Settings, mailto: bool = False) -> Batch:
    return Batch(
        batch_id="b",
        edition_id=47,
        subject=SUBJECT,
        from_email=settings.newsletter.from_email,
        from_name=settings.newsletter.from_name,
        html='<p>Hello</p><a href="%%unsubscribe_url%%">unsubscribe</a>',
        text="Hello\nUnsubscribe: %%unsubscribe_url%%\n",
        recipients=_recipients(settings, mailto),
        headers={"List-Id": list_id(settings)},
    )


def _unsubscribe_url(recipient: Recipient) -> str:
    url = recipient.substitutions["%%unsubscribe_url%%"]
    assert url.startswith(BASE + "/u/") and len(url) > 100, url  # a production-length URL
    return url


def _header_block(raw: bytes, name: bytes) -> bytes:
    """The header's raw line and its continuation lines, exactly as on the wire."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    match = re.search(
        rb"^" + re.escape(name) + rb":[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head, re.M | re.I
    )
    assert match, f"{name!r} not in {head!r}"
    return match.group(0)


def _assert_literal_headers(raw: bytes, url: str, mailto: bool = False) -> None:
    header = _header_block(raw, b"List-Unsubscribe")
    assert b"=?" not in header and b"?=" not in header
    lines = header.split(b"\r\n")
    assert lines[0] == b"List-Unsubscribe: <" + url.encode() + (b">," if mailto else b">")
    if mailto:  # folded only after the comma, between the two URIs
        assert lines[1:] == [b" <mailto:" + MAILTO.encode() + b"?subject=unsubscribe>"]
    else:
        assert len(lines) == 1
    post = _header_block(raw, b"List-Unsubscribe-Post")
    assert post == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    assert b"=?utf-8?" not in _header_block(raw, b"List-Unsubscribe")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    # Subject is non-ASCII: RFC 2047 is right there, and it is folded to 78.
    subject = _header_block(raw, b"Subject")
    assert b"=?utf-8?" in subject
    assert all(len(line) <= 78 for line in subject.split(b"\r\n"))


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


def _smtp(server: tuple[str, int], tls: tuple[Path, Path], **kw: Any) -> SmtpBackend:
    return SmtpBackend(
        server[0],
        server[1],
        username=USER,
        password=PASSWORD,
        ca_file=str(tls[0]),
        timeout=5.0,
        clock=lambda: NOW,
        **kw,
    )


@pytest.mark.parametrize("mailto", [False, True])
def test_smtp_wire_bytes_carry_the_unsubscribe_url_literally_and_dkim_verifies(
    prod_settings: Settings, server, tls, handler: Handler, tmp_path: Path, mailto: bool
) -> None:
    key_path, record = dkim_keys(tmp_path)
    key = DkimKey.load(key_path, "digest2026", "meridianreview.example")
    batch = _batch(prod_settings, mailto)
    statuses = _smtp(server, tls, dkim_key=key).send_batch(batch)
    assert [s.status for s in statuses] == ["accepted", "accepted"]
    for recipient, (_, _, raw) in zip(batch.recipients, handler.messages, strict=True):
        url = _unsubscribe_url(recipient)
        _assert_literal_headers(raw, url, mailto)
        signature = _header_block(raw, b"DKIM-Signature").replace(b"\r\n", b"")
        signed = re.search(rb"h=([^;]+)", signature)
        assert signed and {b"list-unsubscribe", b"list-unsubscribe-post"} <= {
            h.strip().lower() for h in signed.group(1).replace(b" ", b"").split(b":")
        }

        def dns(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"digest2026._domainkey.meridianreview.example."
            return record

        assert dkim.verify(raw, dnsfunc=dns)
        other = b"X" if url[-1] != "X" else b"Y"  # a token may end in X already: 1 in 64
        tampered = raw.replace(url.encode(), url[:-1].encode() + other, 1)
        assert tampered != raw and not dkim.verify(tampered, dnsfunc=dns)


@pytest.mark.parametrize("mailto", [False, True])
def test_outbox_files_carry_the_unsubscribe_url_literally(
    prod_settings: Settings, tmp_path: Path, mailto: bool
) -> None:
    backend = OutboxBackend(tmp_path / "outbox", clock=lambda: NOW)
    backend.open()
    batch = _batch(prod_settings, mailto)
    statuses = backend.send_batch(batch)
    for recipient, status in zip(batch.recipients, statuses, strict=True):
        raw = Path(str(status.provider_id)).read_bytes()
        _assert_literal_headers(raw, _unsubscribe_url(recipient), mailto)


def test_a_single_uri_longer_than_78_is_never_split_or_encoded(prod_settings: Settings) -> None:
    long_url = BASE + "/u/" + "t" * 300
    recipient = Recipient(
        1,
        "reader@example.com",
        {"%%unsubscribe_url%%": long_url},
        {
            "List-Unsubscribe": f"<{long_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    batch = _batch(prod_settings)
    raw = build_message(batch, recipient, NOW).as_bytes()
    assert _header_block(raw, b"List-Unsubscribe") == f"List-Unsubscribe: <{long_url}>".encode()


def test_a_non_ascii_list_unsubscribe_is_refused_not_encoded(prod_settings: Settings) -> None:
    recipient = Recipient(
        1, "reader@example.com", {}, {"List-Unsubscribe": "<https://ü.example/u/x>"}
    )
    with pytest.raises(ValueError, match="List-Unsubscribe must be plain ASCII"):
        build_message(_batch(prod_settings), recipient, NOW)
