"""The SendGrid request body written as text reads back as exactly the payload dict, whatever
the strings in it; and python_http_client sends it as it is, with its own headers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.backends.base import Batch, Patterns, Recipient, RecipientTable
from digest.backends.sendgrid import SendGridBackend
from digest.backends.sendgrid_json import CONTENT_TYPE, JsonText

# Anything a string may hold: quotes, backslashes, % signs, control and non-ASCII characters.
_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["%%unsubscribe_url%%", '"quoted"', "back\\slash", "%s %d %%", "\u2028", "é"]
)
_mapping = st.dictionaries(_text, _text, max_size=3)
_recipient = st.builds(
    Recipient,
    delivery_id=st.integers(1, 10**9),
    email=_text,
    substitutions=_mapping,
    headers=_mapping,
)


@st.composite
def _batches(draw: st.DrawFn) -> Batch:
    first = draw(_recipient)
    # Mostly recipients with the first one's keys (the template), sometimes keys of their own.
    alike = st.builds(
        lambda r, subs, heads: r._replace(
            substitutions=dict(zip(first.substitutions, subs, strict=False)),
            headers=dict(zip(first.headers, heads, strict=False)),
        ),
        _recipient,
        st.lists(_text, min_size=len(first.substitutions), max_size=len(first.substitutions)),
        st.lists(_text, min_size=len(first.headers), max_size=len(first.headers)),
    )
    others = draw(st.lists(alike | _recipient, max_size=5))
    return Batch(
        batch_id="b",
        edition_id=draw(st.integers(1, 10**6)),
        subject=draw(_text),
        html=draw(_text),
        text=draw(_text),
        from_email=draw(_text),
        recipients=[first, *others],
        from_name=draw(st.none() | _text),
        reply_to=draw(st.none() | _text),
        headers=draw(_mapping),
        test=draw(st.booleans()),
    )


@st.composite
def _table_batches(draw: st.DrawFn) -> Batch:
    """A send's batch: recipients as columns, links as patterns over their own strings."""
    width = draw(st.integers(0, 3))
    pattern = st.lists(_text | st.integers(0, max(width - 1, 0)), max_size=4).map(
        lambda parts: tuple(p for p in parts if isinstance(p, str) or width)
    )
    patterns = Patterns(
        draw(st.dictionaries(_text, pattern, max_size=3)),
        draw(st.dictionaries(_text, pattern, max_size=3)),
    )
    n = draw(st.integers(1, 5))
    ids = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))
    emails = draw(st.lists(_text, min_size=n, max_size=n))
    own = draw(st.lists(st.lists(_text, min_size=width, max_size=width), min_size=n, max_size=n))
    return Batch(
        batch_id="b",
        edition_id=draw(st.integers(1, 10**6)),
        subject=draw(_text),
        html=draw(_text),
        text=draw(_text),
        from_email=draw(_text),
        recipients=RecipientTable(ids, emails, [tuple(o) for o in own], patterns),
        headers=draw(_mapping),
        test=draw(st.booleans()),
    )


BACKEND = SendGridBackend("SG.k", "http://127.0.0.1:9", click_tracking=True)


@given(_table_batches())
def test_a_table_batch_reads_as_the_payload_of_its_recipients(batch: Batch) -> None:
    text = BACKEND.body(batch)
    assert json.loads(text) == BACKEND.payload(batch)
    assert text.isascii()


@given(_batches())
def test_the_body_text_reads_as_the_payload(batch: Batch) -> None:
    text = BACKEND.body(batch)
    assert json.loads(text) == BACKEND.payload(batch)
    assert text.isascii()  # escaped like json.dumps does by default


def test_the_library_sends_the_text_as_it_is_and_logs_only_its_size(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from python_http_client import Client

    sent: list[tuple[bytes, dict[str, str]]] = []

    def capture(self: Client, opener: object, request: Any, timeout: float | None = None) -> None:
        sent.append((request.data, dict(request.header_items())))
        raise TimeoutError

    monkeypatch.setattr(Client, "_make_request", capture)
    client = Client(host="http://127.0.0.1:9", request_headers={"Authorization": "Bearer x"})
    text = '{"a":"\\u00e9"}'
    with (
        caplog.at_level(logging.DEBUG, logger="python_http_client.client"),
        pytest.raises(TimeoutError),
    ):
        client.mail.send.post(
            request_body=JsonText(text), request_headers={"Content-Type": CONTENT_TYPE}
        )
    data, headers = sent[0]
    assert data == text.encode() and headers["Content-type"] == CONTENT_TYPE
    assert f"PAYLOAD: <{len(text)} bytes of JSON>" in caplog.text and "00e9" not in caplog.text


def test_what_goes_in_unescaped_is_what_json_dumps_leaves_alone() -> None:
    from json.encoder import ESCAPE_ASCII

    from digest.backends.sendgrid_json import _AS_THEY_ARE

    kept = "".join(chr(c) for c in range(0x80) if not ESCAPE_ASCII.match(chr(c)))
    assert kept.encode() == _AS_THEY_ARE
