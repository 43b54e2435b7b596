"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook.

Verification (docs/standards.md §3 "Signed webhook"): ECDSA P-256 over the timestamp header followed
by the RAW body, checked with the library's own `EventWebhook` helper; SendGrid documents no
replay window, so a timestamp older (or newer) than [delivery] webhook_max_age is refused too,
and every event is deduplicated on sg_event_id (digest.events). Unsigned requests are refused:
until the public key is configured the endpoint answers 503 and processes nothing.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.send.events import EventResult, process
from digest.store.db import transaction

PATH = "/webhooks/sendgrid"
MAX_BODY = 16 * 1024 * 1024


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def verify(public_key: str, payload: str, signature: str, timestamp: str) -> bool:
    try:
        return bool(_verifier(public_key).verify_signature(payload, signature, timestamp))
    except (binascii.Error, ValueError, TypeError):
        return False


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(clock: Callable[[], datetime] | None = None) -> APIRouter:
    """The webhook route; `clock` is injectable so that tests can pin the replay window."""
    now_of = clock or (lambda: datetime.now(UTC))
    api = APIRouter()

    @api.post(PATH, include_in_schema=False)
    async def sendgrid_events(request: Request) -> JSONResponse:
        settings: Settings = request.app.state.settings
        key = settings.delivery.webhook_public_key
        if not key:
            return _refuse(
                503, "the event webhook is not configured ([delivery] webhook_public_key)"
            )
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return _refuse(413, "event batch too large")
        raw = await request.body()
        signature = request.headers.get(EventWebhookHeader.SIGNATURE)
        timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
        if not signature or not timestamp:
            return _refuse(401, "missing signature headers")
        now = now_of()
        if not _fresh(timestamp, now, settings.delivery.webhook_max_age):
            return _refuse(401, "timestamp outside the accepted window")
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _refuse(400, "body is not UTF-8")
        if not verify(key, payload, signature, timestamp):
            return _refuse(401, "signature does not verify")
        try:
            events = json.loads(payload)
        except ValueError:
            return _refuse(400, "body is not JSON")
        if not isinstance(events, list):
            return _refuse(400, "body must be a JSON array of events")
        sessions: sessionmaker[Session] = request.app.state.sessions
        result = await run_in_threadpool(_process, sessions, settings, events, now)
        return JSONResponse(result.__dict__)

    return api


def _fresh(timestamp: str, now: datetime, max_age: int) -> bool:
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    return abs(now.timestamp() - stamp) <= max_age


def _process(
    sessions: sessionmaker[Session], settings: Settings, events: list[Any], now: datetime
) -> EventResult:
    with transaction(sessions) as session:
        return process(
            session,
            events,
            now=now,
            keys=settings.secret_keys(),
            blocked_threshold=settings.delivery.blocked_threshold,
        )
