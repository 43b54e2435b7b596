"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook.

Verification (docs/standards.md §3 "Signed webhook"): ECDSA P-256 over the timestamp header followed
by the RAW body, with the key as the `sendgrid` library's `EventWebhook` helper loads it;
SendGrid documents no replay window, so a timestamp older (or newer) than [delivery]
webhook_max_age is refused too, and every event is deduplicated on sg_event_id (digest.events).
Unsigned requests are refused: until the public key is configured the endpoint answers 503 and
processes nothing.

The order is what keeps an anonymous client cheap: the signature headers are checked (present,
fresh, a well-formed signature) before a byte of the body is read; the body is then hashed as it
streams and kept in a spooled file (memory up to SPOOL_BYTES, disk beyond, the route's 16 MB
limit on top: digest/web/bodies.py), so a forged signature over 16 MB costs a megabyte of
memory, not 16. Only a body whose signature verifies is parsed; its events are checked one by
one (digest/send/eventdata.py), and a bad one is skipped and counted, not fatal to its batch.
"""

from __future__ import annotations

import base64
import binascii
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.send.eventdata import parse_batch
from digest.send.events import EventResult, process
from digest.store.db import transaction

PATH = "/webhooks/sendgrid"
# Bodies up to this size stay in memory while they are hashed; larger ones go to a temp file.
SPOOL_BYTES = 1024 * 1024
# A unix time in seconds, as SendGrid sends it.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@lru_cache(maxsize=4)
def _public_key(public_key: str) -> ec.EllipticCurvePublicKey:
    key = EventWebhook(public_key).public_key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def verify_digest(public_key: str, digest: bytes, signature: str) -> bool:
    """SendGrid's check (EventWebhook.verify_signature: ECDSA-SHA256 over timestamp + body),
    on the SHA-256 of timestamp + body computed as the body streamed."""
    try:
        key = _public_key(public_key)
        key.verify(base64.b64decode(signature), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def header_problem(
    signature: str | None, timestamp: str | None, now: datetime, max_age: int
) -> str | None:
    """Why the signature headers cannot verify any body, or None. Checked before the body."""
    if not signature or not timestamp:
        return "missing signature headers"
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now.timestamp() - int(timestamp)) > max_age:
        return "timestamp outside the accepted window"
    try:
        decode_dss_signature(base64.b64decode(signature, validate=True))
    except (binascii.Error, ValueError):
        return "the signature is not a base64 ECDSA signature"
    return None


async def _read_hashed(request: Request, timestamp: str) -> tuple[bytes, IO[bytes]]:
    """SHA-256 of timestamp + body, and the body, read as it streams (within the route's
    limit: a larger body raises BodyTooLarge, answered 413)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(timestamp.encode("utf-8"))
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        async for chunk in request.stream():
            digest.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return digest.finalize(), spool


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
        signature = request.headers.get(EventWebhookHeader.SIGNATURE)
        timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
        now = now_of()
        problem = header_problem(signature, timestamp, now, settings.delivery.webhook_max_age)
        if problem is not None:
            return _refuse(401, problem)
        assert signature is not None and timestamp is not None
        digest, spool = await _read_hashed(request, timestamp)
        with spool:
            if not verify_digest(key, digest, signature):
                return _refuse(401, "signature does not verify")
            raw = spool.read()
        try:
            events = parse_batch(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return _refuse(400, "body is not UTF-8")
        except ValueError as exc:
            return _refuse(400, f"body is not JSON: {exc}")
        if not isinstance(events, list):
            return _refuse(400, "body must be a JSON array of events")
        sessions: sessionmaker[Session] = request.app.state.sessions
        result = await run_in_threadpool(_process, sessions, settings, events, now)
        return JSONResponse(result.__dict__)

    return api


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
