"""The SendGrid Event Webhook, end to end: the fake signs and posts real HTTP batches to the
route served by uvicorn; we check the ledger, suppressions and counters it leaves behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.sendgrid import SendGridBackend
from digest.config import Settings
from digest.ledger.tally import LedgerRow
from digest.send.engine import begin, send_edition
from digest.store.db import transaction
from digest.store.models import (
    ACCEPTED,
    FAILED,
    SUBMITTED,
    Delivery,
    EditionSend,
    LinkClick,
    WebhookEvent,
)
from digest.web import webhooks
from subscribers.models import ACTIVE, BOUNCED, COMPLAINED, UNSUBSCRIBED, Subscriber, Suppression
from tests.fakes.sendgrid import FakeSendGrid
from tests.send_helpers import (
    add_subscribers,
    ledger_rows,
    ledger_statuses,
    make_edition,
    serve_app,
    with_delivery,
)
from tests.send_runtime import FakeTime


@dataclass
class Hook:
    fake: FakeSendGrid
    url: str
    factory: sessionmaker[Session]
    settings: Settings
    edition: int


def _app(settings: Settings, factory: sessionmaker[Session], clock: Any = None) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.sessions = factory
    app.include_router(webhooks.router(clock))
    return app


@pytest.fixture
def hook(factory, settings, now) -> Iterator[Hook]:
    with FakeSendGrid("SG.k") as fake:
        s = with_delivery(settings, webhook_public_key=fake.public_key, blocked_threshold=2)
        edition = make_edition(factory, now)
        add_subscribers(factory, 4, now)
        begin(factory, edition, now)
        with transaction(factory) as session:  # as if a worker had handed them to SendGrid
            session.execute(Delivery.__table__.update().values(status=SUBMITTED))
        with serve_app(_app(s, factory)) as base:
            fake.webhook_url = base + webhooks.PATH
            yield Hook(fake, base + webhooks.PATH, factory, s, edition)


def _event(hook: Hook, kind: str, did: int, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "email": f"user{did - 1}@example.com",
        "timestamp": 1_700_000_000,
        "sg_event_id": f"{kind}-{did}-{n}",
        "sg_message_id": "m.filter0",
        "edition": str(hook.edition),
        "delivery": str(did),
        **extra,
    }


def _post(hook: Hook, events: list[dict[str, Any]]) -> int:
    return hook.fake.post_signed(json.dumps(events))


def _delivery(hook: Hook, delivery_id: int) -> LedgerRow:
    """The delivery as the ledger sees it (its own state, or its batch's)."""
    rows = {row.id: row for row in ledger_rows(hook.factory).values()}
    return rows[delivery_id]


def _subscriber(hook: Hook, email: str) -> Subscriber:
    with hook.factory() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert row is not None
        return row


def test_signed_events_settle_submitted_deliveries(hook: Hook) -> None:
    assert _post(hook, [_event(hook, "processed", 1), _event(hook, "delivered", 2)]) == 200
    assert _delivery(hook, 1).status == ACCEPTED and _delivery(hook, 2).status == ACCEPTED
    assert _delivery(hook, 3).status == SUBMITTED


def test_a_bad_signature_is_refused_and_nothing_is_kept(hook: Hook) -> None:
    import http.client

    payload = json.dumps([_event(hook, "processed", 1)])
    conn = http.client.HTTPConnection("127.0.0.1", int(hook.url.split(":")[2].split("/")[0]))
    timestamp = str(int(datetime.now().timestamp()))
    forged = hook.fake.sign(payload.replace("processed", "delivered"), timestamp)
    conn.request(
        "POST",
        webhooks.PATH,
        body=payload,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": forged,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 401 and b"signature" in body
    with hook.factory() as session:
        assert session.scalar(select(WebhookEvent.id)) is None
    assert _delivery(hook, 1).status == SUBMITTED


def test_missing_signature_headers_are_refused(hook: Hook) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(hook.url, data=b"[]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 401


def test_a_stale_timestamp_is_refused_even_when_signed(hook: Hook) -> None:
    old = str(int(datetime.now().timestamp()) - 601)
    assert hook.fake.post_signed(json.dumps([_event(hook, "processed", 1)]), old) == 401
    assert _delivery(hook, 1).status == SUBMITTED


def test_a_body_that_is_not_an_array_is_refused(hook: Hook) -> None:
    assert hook.fake.post_signed('{"event": "processed"}') == 400
    assert hook.fake.post_signed("not json") == 400


def test_the_webhook_refuses_everything_until_its_key_is_set(factory, settings) -> None:
    with serve_app(_app(settings, factory)) as base, FakeSendGrid() as fake:
        fake.webhook_url = base + webhooks.PATH
        assert fake.post_signed("[]") == 503


def test_repeated_events_are_processed_once(hook: Hook) -> None:
    batch = [_event(hook, "open", 1), _event(hook, "open", 2)]
    assert _post(hook, batch) == 200
    assert _post(hook, batch) == 200
    with hook.factory() as session:
        assert session.get(EditionSend, hook.edition).opens == 2  # type: ignore[union-attr]
        assert len(session.scalars(select(WebhookEvent)).all()) == 2


def test_a_hard_bounce_fails_the_delivery_and_suppresses_at_once(hook: Hook) -> None:
    _post(
        hook,
        [
            _event(hook, "processed", 1),
            _event(hook, "bounce", 1, type="bounce", reason="550 5.1.1 no such user"),
        ],
    )
    row = _delivery(hook, 1)
    assert row.status == FAILED and row.error == "bounce: bounce: 550 5.1.1 no such user"
    assert _subscriber(hook, "user0@example.com").status == BOUNCED
    with hook.factory() as session:
        assert session.scalar(select(Suppression.reason)) == "bounced"


def test_blocked_bounces_count_toward_a_threshold(hook: Hook) -> None:
    _post(hook, [_event(hook, "bounce", 1, 1, type="blocked", reason="IP reputation")])
    assert _subscriber(hook, "user0@example.com").status == ACTIVE
    _post(hook, [_event(hook, "bounce", 1, 2, type="blocked", reason="IP reputation")])
    assert _subscriber(hook, "user0@example.com").status == BOUNCED


def _blocked_by_address(hook: Hook, n: int) -> dict[str, Any]:
    """A blocked bounce without custom_args: only its address says whose it is."""
    event = _event(hook, "bounce", 1, n, type="blocked", reason="IP reputation")
    del event["edition"], event["delivery"]
    return {**event, "email": " User0@Example.COM"}


def test_blocked_bounces_matched_by_address_alone_reach_the_threshold(hook: Hook) -> None:
    threshold = hook.settings.delivery.blocked_threshold
    _post(hook, [_blocked_by_address(hook, n) for n in range(threshold)])
    assert _subscriber(hook, "user0@example.com").status == BOUNCED


def test_blocked_bounces_matched_by_address_alone_below_the_threshold_do_not_suppress(
    hook: Hook,
) -> None:
    threshold = hook.settings.delivery.blocked_threshold
    _post(hook, [_blocked_by_address(hook, n) for n in range(threshold - 1)])
    assert _subscriber(hook, "user0@example.com").status == ACTIVE


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("spamreport", COMPLAINED),
        ("unsubscribe", UNSUBSCRIBED),
        ("group_unsubscribe", UNSUBSCRIBED),
    ],
)
def test_complaints_and_unsubscribes_suppress(hook: Hook, kind: str, status: str) -> None:
    _post(hook, [_event(hook, kind, 2)])
    assert _subscriber(hook, "user1@example.com").status == status
    assert _delivery(hook, 2).status == SUBMITTED  # they did receive it


def test_dropped_for_a_suppression_reason_suppresses(hook: Hook) -> None:
    _post(
        hook,
        [
            _event(hook, "dropped", 3, reason="Bounced Address"),
            _event(hook, "dropped", 4, reason="Spam Content"),
        ],
    )
    assert _subscriber(hook, "user2@example.com").status == BOUNCED
    assert _subscriber(hook, "user3@example.com").status == ACTIVE
    assert (
        _delivery(hook, 4).status == FAILED and _delivery(hook, 4).error == "dropped: Spam Content"
    )


def test_opens_and_clicks_are_counted_per_edition_and_link(hook: Hook) -> None:
    link = "https://news.example/a"
    _post(
        hook,
        [
            _event(hook, "open", 1),
            _event(hook, "open", 2, sg_machine_open=True),
            _event(hook, "click", 1, 1, url=link),
            _event(hook, "click", 2, 1, url=link),
            _event(hook, "click", 3, 1, url="https://news.example/b"),
        ],
    )
    with hook.factory() as session:
        counters = session.get(EditionSend, hook.edition)
        assert counters is not None
        assert (counters.opens, counters.machine_opens, counters.clicks) == (1, 1, 3)
        clicks = dict(session.execute(select(LinkClick.url, LinkClick.clicks)).all())
    assert clicks == {link: 2, "https://news.example/b": 1}


def test_opens_and_clicks_of_a_test_send_are_not_counted(hook: Hook) -> None:
    """`digest send --test-to` mail names the edition but no delivery: it is not the audience."""
    test_send = {"delivery": "test", "email": "editor@example.com"}
    _post(
        hook,
        [
            {**_event(hook, "open", 1, 1), **test_send},
            {**_event(hook, "click", 1, 1, url="https://news.example/a"), **test_send},
            _event(hook, "open", 2),
        ],
    )
    with hook.factory() as session:
        counters = session.get(EditionSend, hook.edition)
        assert counters is not None
        assert (counters.opens, counters.machine_opens, counters.clicks) == (1, 0, 0)
        assert session.scalars(select(LinkClick)).all() == []


def test_events_naming_no_delivery_of_ours_change_no_delivery(hook: Hook) -> None:
    _post(
        hook,
        [
            _event(hook, "bounce", 1, delivery="test", type="bounce"),
            _event(hook, "processed", 2, edition="999"),
        ],
    )
    assert _delivery(hook, 1).status == SUBMITTED and _delivery(hook, 2).status == SUBMITTED
    assert _subscriber(hook, "user0@example.com").status == BOUNCED  # found by address


def test_malformed_events_are_skipped_not_fatal(hook: Hook) -> None:
    assert _post(hook, ["junk", {"event": "open"}, _event(hook, "processed", 1)]) == 200
    assert _delivery(hook, 1).status == ACCEPTED


def test_a_real_send_is_confirmed_by_the_fakes_events(factory, settings, now) -> None:
    edition = make_edition(factory, now)
    add_subscribers(factory, 30, now)
    with FakeSendGrid("SG.k") as fake:
        s = with_delivery(settings, webhook_public_key=fake.public_key, batch_size=10)
        with serve_app(_app(s, factory)) as base:
            fake.webhook_url = base + webhooks.PATH
            fake.outcomes["user7@example.com"] = [
                {"event": "bounce", "type": "bounce", "reason": "550 gone"}
            ]
            backend = SendGridBackend("SG.k", fake.url)
            report = send_edition(
                factory, s, backend, edition_id=edition, now=now, runtime=FakeTime(now).runtime()
            )
            fake.flush()
    # The bounce may arrive before or after the worker records the batch: it wins either way.
    assert sum(report.counts.values()) == 30 and report.finished
    assert set(fake.webhook_answers) == {200}
    statuses = ledger_statuses(factory)
    assert statuses.pop("user7@example.com") == FAILED
    assert set(statuses.values()) == {ACCEPTED}
    with factory() as session:
        events = session.scalars(select(WebhookEvent.event)).all()
    assert len(events) == 61  # processed + delivered for 30, and one bounce


def test_the_web_app_serves_the_webhook(settings) -> None:
    from digest.web.app import create_app

    with FakeSendGrid() as fake:
        s = with_delivery(settings, webhook_public_key=fake.public_key)
        with serve_app(create_app(s)) as base:
            fake.webhook_url = base + webhooks.PATH
            assert fake.post_signed("[]") == 200


def test_the_web_app_accepts_a_full_sized_event_batch(settings) -> None:
    from digest.web.app import create_app

    with FakeSendGrid() as fake:
        s = with_delivery(settings, webhook_public_key=fake.public_key)
        events = [
            {
                "event": "open",
                "email": f"user{i}@example.com",
                "sg_event_id": f"big-{i}",
                "timestamp": 1_700_000_000,
                "edition": "999",
                "delivery": str(i),
            }
            for i in range(1000)
        ]
        with serve_app(create_app(s)) as base:
            fake.webhook_url = base + webhooks.PATH
            assert fake.post_signed(json.dumps(events)) == 200
