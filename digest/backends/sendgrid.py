"""SendGrid's v3 Mail Send API through the official `sendgrid` library.

One request per batch: one body, one personalization per recipient carrying that recipient's
substitutions (the unsubscribe / manage URLs) and List-Unsubscribe headers (docs/standards.md §3:
per-recipient headers go in `personalizations[i].headers`). `custom_args` carry only opaque ids
{edition, delivery} so the Event Webhook can be matched back to the ledger; never an address
(docs/standards.md §4: custom_args are kept indefinitely by Twilio). Subscription tracking is
off and no `asm` is sent: we host RFC 8058 unsubscribe ourselves, and SendGrid would otherwise
inject its own List-Unsubscribe (docs/standards.md §3). The body is handed to the library as JSON
text (digest.backends.sendgrid_json): the library still builds the request, with its own headers,
and raises its own errors; it writes the request on a keep-alive connection of the sending
thread's own (digest.backends.keepalive), through the seam the library keeps for its tests
(`Client._make_request`), instead of opening a connection per request. Batches are sent from
several threads at once (one per request in flight).
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from digest.backends.base import (
    BackendConfigError,
    Batch,
    EmailBackend,
    PermanentError,
    RecipientStatus,
    TransientError,
    answer_all,
)
from digest.backends.keepalive import Answer, Connections, Unreachable
from digest.backends.sendgrid_json import CONTENT_TYPE, JsonText, body_text, personalization
from digest.backends.wait import provider_wait

# "personalizations.3.to.0.email" or "personalizations[3].to[0].email": whom SendGrid blamed.
_BLAMED = re.compile(r"personalizations(?:\.|\[)(\d+)")


class SendGridBackend(EmailBackend):
    name: ClassVar[str] = "sendgrid"
    # The API's limit: 1000 personalizations (and recipients) per request (docs/standards.md §3).
    max_batch: ClassVar[int] = 1000

    def __init__(
        self,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        *,
        timeout: float = 30.0,
        click_tracking: bool = False,
        open_tracking: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not api_key:
            raise BackendConfigError("DIGEST_SENDGRID_API_KEY is not set")
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.tracking = {
            "subscription_tracking": {"enable": False},
            "click_tracking": {"enable": click_tracking, "enable_text": False},
            "open_tracking": {"enable": open_tracking},
        }
        self.clock = clock or (lambda: datetime.now(UTC))
        self._client = SendGridAPIClient(api_key=api_key, host=self.host)
        self._connections = Connections(self.host, timeout)
        # The library's client for /v3/mail/send, writing on our keep-alive connections.
        self._send = self._client.client.mail.send
        self._send._make_request = self._exchange

    def close(self) -> None:
        self._connections.close()

    def __repr__(self) -> str:  # the client holds the API key: never show it
        return f"SendGridBackend(host={self.host!r})"

    def payload(self, batch: Batch) -> dict[str, Any]:
        """The /v3/mail/send request body (text/plain before text/html, as RFC 2046 wants)."""
        edition = str(batch.edition_id)
        people = [
            personalization(r, edition, "test" if batch.test else str(r.delivery_id))
            for r in batch.recipients
        ]
        return {**self._message(batch), "personalizations": people}

    def body(self, batch: Batch) -> str:
        """`payload(batch)` as JSON text, written without building it (sendgrid_json)."""
        return body_text(batch, self._message(batch))

    def _message(self, batch: Batch) -> dict[str, Any]:
        """Every member of the body but the personalizations."""
        sender: dict[str, str] = {"email": batch.from_email}
        if batch.from_name:
            sender["name"] = batch.from_name
        message: dict[str, Any] = {
            "from": sender,
            "subject": batch.subject,
            "content": [
                {"type": "text/plain", "value": batch.text},
                {"type": "text/html", "value": batch.html},
            ],
            "tracking_settings": self.tracking,
        }
        if batch.reply_to:
            message["reply_to"] = {"email": batch.reply_to}
        if batch.headers:
            message["headers"] = dict(batch.headers)
        return message

    def send_batch(self, batch: Batch) -> Sequence[RecipientStatus]:
        body = JsonText(self.body(batch))
        try:
            response = self._send.post(
                request_body=body,
                request_headers={"Content-Type": CONTENT_TYPE},
                timeout=self.timeout,
            )
        except http_errors.HTTPError as exc:
            raise self._refusal(exc) from None
        except Unreachable as exc:  # no connection: nothing was sent
            raise TransientError(f"cannot reach SendGrid at {self.host}: {exc.__cause__}") from None
        except TimeoutError as exc:
            raise TransientError(
                f"SendGrid did not answer in {self.timeout:g} s", maybe_sent=True
            ) from exc
        except urllib.error.URLError as exc:
            raise self._unreachable(exc) from None
        except (http.client.HTTPException, ConnectionError) as exc:
            # The connection broke after the request went out: SendGrid may have it.
            raise TransientError(f"connection to SendGrid lost: {exc!r}", maybe_sent=True) from None
        message_id = response.headers.get("X-Message-Id")
        return answer_all(batch.recipients, "accepted", message_id)

    def _exchange(
        self, opener: object, request: urllib.request.Request, timeout: float | None = None
    ) -> Answer:
        """What the library's `_make_request` does with urllib, on a keep-alive connection: the
        answer, or the library's own HTTPError for a status of 400 and up."""
        url = urllib.parse.urlsplit(request.full_url)
        path = url.path + (f"?{url.query}" if url.query else "")
        data = request.data if isinstance(request.data, bytes) else b""
        answer = self._connections.request(
            request.get_method(), path, data, dict(request.header_items())
        )
        if answer.status >= 400:
            error = urllib.error.HTTPError(
                request.full_url, answer.status, answer.reason, answer.headers,
                io.BytesIO(answer.body),
            )  # fmt: skip
            raise http_errors.handle_error(error)
        return answer

    def _unreachable(self, exc: urllib.error.URLError) -> TransientError:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return TransientError(f"SendGrid did not answer in {self.timeout:g} s", maybe_sent=True)
        return TransientError(f"cannot reach SendGrid at {self.host}: {reason}")

    def _refusal(self, exc: http_errors.HTTPError) -> Exception:
        status = int(exc.status_code)
        message, field = _errors(exc.body)
        headers = exc.headers or {}
        if status == 429:
            wait = provider_wait(
                headers.get("Retry-After"), headers.get("X-RateLimit-Reset"), self.clock()
            )
            return TransientError(f"SendGrid 429: {message}", retry_after=wait)
        if status >= 500:
            wait = provider_wait(
                headers.get("Retry-After"), headers.get("X-RateLimit-Reset"), self.clock()
            )
            return TransientError(f"SendGrid {status}: {message}", retry_after=wait)
        if status in (401, 403):
            return BackendConfigError(
                f"SendGrid refused the API key ({status}): {message} "
                "(check DIGEST_SENDGRID_API_KEY and its Mail Send permission)"
            )
        if status in (400, 413):
            blamed = _BLAMED.match(field or "")
            return PermanentError(
                f"SendGrid {status}: {message}" + (f" (field {field})" if field else ""),
                bad_index=int(blamed.group(1)) if blamed else None,
            )
        return BackendConfigError(
            f"SendGrid answered {status} at {self.host}/v3/mail/send: {message} "
            "(check [delivery] sendgrid_host)"
        )


def _errors(body: bytes | str | None) -> tuple[str, str | None]:
    """SendGrid's own words from `{"errors": [{"message", "field", "help"}]}`, and the field of
    the first error (which names the personalization at fault, when it is one)."""
    if not body:
        return "(no message)", None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(text).get("errors") or []
    except (ValueError, AttributeError):
        return text[:500], None
    messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    fields = [e.get("field") for e in errors if isinstance(e, dict) and e.get("field")]
    return "; ".join(m for m in messages if m) or "(no message)", (
        str(fields[0]) if fields else None
    )
