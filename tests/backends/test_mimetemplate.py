"""The messages of a batch written from one template are build_message's messages, byte for byte,
but for the random part of the Message-ID and the MIME boundary (drawn once per batch instead of
once per message); recipients who do not fit the template get build_message's message itself."""

from __future__ import annotations

import dataclasses
import email.utils
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.backends.base import Batch, Patterns, Recipient, RecipientTable
from digest.backends.mime import build_message, raw_headers
from digest.backends.mimetemplate import MessageTemplate, messages
from digest.backends.outbox import OutboxBackend
from digest.people.links import table
from digest.render.placeholders import MANAGE_URL, UNSUBSCRIBE_URL

NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
KEYS = ["a-signing-key-for-the-template-tests"]
# MJML writes the HTML on very long lines: a placeholder sits deep inside one, and another
# close to a soft line break of the quoted-printable encoding.
HTML = (
    '<html><body style="margin:0">'
    + "<p>Caf\u00e9 = \u201cquoted\u201d text, 100% plain.</p>" * 40
    + f'<a href="{UNSUBSCRIBE_URL}">Unsubscribe</a> \u00b7 <a href="{MANAGE_URL}">Manage</a>'
    + "<p>trailing text</p>" * 30
    + "</body></html>\n<p>\t</p>\n"
)
TEXT = f"The week.\n\nUnsubscribe: {UNSUBSCRIBE_URL}\nManage: {MANAGE_URL}\n\u2014 The Review \n"


def _batch(
    n: int = 12,
    *,
    base_url: str = "https://newsletter.meridianreview.example",
    mailto: str | None = None,
    from_email: str = "roundup@meridianreview.example",
    emails: list[str] | None = None,
    public_ids: list[str] | None = None,
    **values: object,
) -> Batch:
    emails = emails or [f"reader{i}@example.com" for i in range(n)]
    public_ids = public_ids or [uuid.uuid4().hex for _ in emails]
    recipients = table(
        list(range(100, 100 + len(emails))), emails, public_ids, base_url, KEYS, mailto
    )
    batch = Batch(
        batch_id="7",
        edition_id=47,
        subject="Die Woche: \u00dcberblick \u00fcber Europa, Asien und den Nahen Osten",
        html=HTML,
        text=TEXT,
        from_email=from_email,
        from_name="The Meridian Review",
        reply_to="editors@meridianreview.example",
        headers={"List-Id": "The Weekly Round-up <the-weekly-round-up.meridianreview.example>"},
        recipients=recipients,
    )
    return dataclasses.replace(batch, **values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, params=[1234567890123456789, 12345678901234567890])
def _message_ids(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Message-IDs drawn alike by build_message and the template (their random part has 19
    digits or 20: the length decides where the header folds)."""
    monkeypatch.setattr(email.utils.random, "getrandbits", lambda bits: request.param)
    monkeypatch.setattr(email.utils.time, "time", lambda: 1795000000.0)


def _plain(message: bytes) -> bytes:
    """The message without what is drawn at random per message: the boundary."""
    boundary = re.search(rb'boundary="([^"]+)"', message)
    assert boundary is not None
    return message.replace(boundary.group(1), b"BOUNDARY")


def _expected(batch: Batch) -> list[bytes]:
    return [_plain(build_message(batch, r, NOW).as_bytes()) for r in batch.recipients]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"mailto": "unsubscribe@meridianreview.example"},  # List-Unsubscribe folds between URIs
        {"base_url": "http://127.0.0.1:8000"},
        {"base_url": "https://" + "n" * 150 + ".example"},  # a placeholder over a line break
        {"from_name": None, "reply_to": None, "subject": "Plain subject"},
        {"from_email": "a@b.example"},  # a short Message-ID, on the header's line
        {"from_email": "roundup@" + "d" * 30 + ".example"},  # a long one, on the next line
    ],
)
def test_every_message_is_build_messages_own(values: dict[str, object]) -> None:
    batch = _batch(**values)  # type: ignore[arg-type]
    template = MessageTemplate.of(batch, NOW)
    assert template is not None
    written = [template.message(i) for i in range(len(batch.recipients))]
    assert [_plain(w.data) for w in written] == _expected(batch)
    for w, recipient in zip(written, batch.recipients, strict=True):
        headers = dict(raw_headers(w.data))
        assert headers["Message-ID"] == w.message_id
        assert w.message_id.endswith(f".d{recipient.delivery_id}@{batch.from_email.split('@')[1]}>")
        assert "list-unsubscribe" in w.names and "dkim-signature" not in w.names


@pytest.mark.parametrize("domain_length", range(1, 40))
def test_the_message_id_folds_where_the_email_package_folds_it(domain_length: int) -> None:
    batch = _batch(2, from_email=f"r@{'d' * domain_length}.example")
    template = MessageTemplate.of(batch, NOW)
    assert template is not None
    assert [_plain(template.message(i).data) for i in range(2)] == _expected(batch)


def test_recipients_who_do_not_fit_the_template_get_build_messages_message() -> None:
    emails = ["plain@example.com", '"quoted name"@example.com', "j\u00fcrgen@example.de"]
    emails += ["x" * 80 + "@example.com", "also.plain+tag@example.com"]
    public_ids = [uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex]
    public_ids.append("short")  # its links are shorter than the template's
    batch = _batch(emails=emails, public_ids=public_ids)
    written = list(messages(batch, NOW))
    assert [_plain(w.data) for w in written] == _expected(batch)


def test_a_batch_of_plain_recipients_has_no_template_and_is_written_all_the_same() -> None:
    batch = _batch(3)
    plain = [
        Recipient(r.delivery_id, r.email, dict(r.substitutions), dict(r.headers))
        for r in batch.recipients
    ]
    batch = dataclasses.replace(batch, recipients=plain)
    assert MessageTemplate.of(batch, NOW) is None
    assert [_plain(w.data) for w in messages(batch, NOW)] == _expected(batch)


def test_a_recipient_header_that_is_parsed_is_not_templated() -> None:
    recipients = RecipientTable(
        [1], ["a@example.com"], [("x",)], Patterns({}, {"X-Campaign": ("c-", 0)})
    )
    batch = dataclasses.replace(_batch(1), recipients=recipients)
    assert MessageTemplate.of(batch, NOW) is None
    assert [_plain(w.data) for w in messages(batch, NOW)] == _expected(batch)


def test_the_outbox_writes_each_recipients_message_from_the_template(tmp_path: Path) -> None:
    batch = _batch(5)
    backend = OutboxBackend(tmp_path / "outbox", clock=lambda: NOW)
    with backend:
        statuses = backend.send_batch(batch)
    assert [s.status for s in statuses] == ["accepted"] * 5
    files = [Path(s.provider_id or "") for s in statuses]
    assert [f.name for f in files] == [f"{i:08d}.eml" for i in range(100, 105)]
    assert [_plain(f.read_bytes()) for f in files] == _expected(batch)
    assert not list((tmp_path / "outbox").rglob("*.tmp"))  # written, then renamed
