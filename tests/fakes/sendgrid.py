"""A fake SendGrid v3 Mail Send API on 127.0.0.1, faithful where it matters (docs/design.md §5).

- Validates every request body against SendGrid's official OpenAPI schema
  (tests/data/sendgrid/tsg_mail_v3.json, MIT, twilio/sendgrid-oai) with `jsonschema`, the
  reference implementation; `validator="jsonschema-rs"` uses a compiled validator of the same
  schema (the benchmark needs ~50 requests/s of 1000 personalizations; tests use the default).
- Enforces the documented limits the schema cannot express (docs/standards.md §3): ≤ 1000
  recipients per request, each address once per request, from/subject/content present,
  text/plain first, custom_args and substitutions < 10,000 bytes, no reserved headers, body
  < 30 MB (413).
- Answers like SendGrid: 202 + X-Message-Id; 400/401/413/415 with `{"errors": [...]}`; 429 with
  Retry-After and X-RateLimit-* headers; 5xx. Scripted faults; records what it accepted.
- Posts signed Event Webhook batches (ECDSA P-256 over timestamp + payload, headers
  X-Twilio-Email-Event-Webhook-Signature / -Timestamp) to the app, like SendGrid does.
- Answers as late as the real API can (`latency` seconds per request, +/- `jitter`): a request
  of 1000 personalizations takes SendGrid a few hundred milliseconds, and that wait, not our
  CPU, is what a sender meets. Each connection has a thread of its own, so requests in flight
  wait side by side; keep-alive connections are kept.

Run as a process for the benchmark: `python -m tests.fakes.sendgrid --validator jsonschema-rs
--latency 0.25 --jitter 0.05` prints its URL, serves until stdin closes, and reports counts at
GET /_fake/stats.
"""

from __future__ import annotations

import base64
import collections
import gc
import http.client
import itertools
import json
import random
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.sendgrid_limits import check_limits
from tests.fakes.sendgrid_limits import error as _error

SPEC = Path(__file__).resolve().parent.parent / "data" / "sendgrid" / "tsg_mail_v3.json"
MAX_BODY = 30 * 1024 * 1024  # "Total email size ... < 30 MB" (docs/standards.md §3)


def mail_send_schema() -> dict[str, Any]:
    """The /v3/mail/send request body schema, with the components its $refs point into."""
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    body = spec["components"]["requestBodies"]["PostMailSend"]
    schema = dict(body["content"]["application/json"]["schema"])
    schema["components"] = spec["components"]
    return schema


def make_validator(kind: str) -> Callable[[Any], list[str]]:
    """A function body → list of "field: message" schema violations."""
    schema = mail_send_schema()
    if kind == "jsonschema-rs":
        import jsonschema_rs

        compiled = jsonschema_rs.validator_for(schema)

        def check_rs(doc: Any) -> list[str]:
            if compiled.is_valid(doc):  # the common case, without building error objects
                return []
            return [f"{_path(e.instance_path)}: {e.message}" for e in compiled.iter_errors(doc)]

        return check_rs
    import jsonschema

    reference = jsonschema.Draft7Validator(schema)

    def check(doc: Any) -> list[str]:
        return [f"{_path(e.absolute_path)}: {e.message}" for e in reference.iter_errors(doc)]

    return check


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(body)"


@dataclass
class Fault:
    """One scripted misbehaviour, used for the next `times` requests."""

    status: int = 500
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # answer this late (tests a client timeout)
    drop: bool = False  # close the connection without an answer
    accept_first: bool = False  # take the mail, then answer with the fault (a "maybe sent")
    times: int = 1

    @classmethod
    def rate_limited(cls, retry_after: int = 1, times: int = 1) -> Fault:
        reset = str(int(time.time()) + retry_after)
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        return cls(429, "too many requests", headers, times=times)


@dataclass(frozen=True)
class Received:
    """One recipient of an accepted request, as the provider saw it."""

    email: str
    message_id: str
    custom_args: dict[str, str]
    substitutions: dict[str, str]
    headers: dict[str, str]
    subject: str
    request: int


class FakeSendGrid:
    def __init__(
        self,
        api_key: str = "SG.fake-key",
        *,
        validator: str = "jsonschema",
        record: bool = True,
        webhook_url: str | None = None,
        events: tuple[str, ...] = ("processed", "delivered"),
        webhook_batch: int = 200,
        latency: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if latency < 0 or jitter < 0 or jitter > latency:
            raise ValueError("latency >= 0 and 0 <= jitter <= latency")
        self.api_key = api_key
        self.latency = latency
        self.jitter = jitter
        self._random = random.Random(seed)
        self.validate = make_validator(validator)
        self.record = record
        self.webhook_url = webhook_url
        self.events = events
        self.webhook_batch = webhook_batch
        self.faults: collections.deque[Fault] = collections.deque()
        self.invalid: set[str] = set()  # addresses answered with 400, like a malformed one
        self.outcomes: dict[str, list[dict[str, Any]]] = {}  # extra events per address
        self.received: list[Received] = []
        self.bodies: list[dict[str, Any]] = []
        self.refusals: list[tuple[int, dict[str, Any]]] = []
        self.delivery_ids: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.recipients = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuses them)
        self.on_request: Callable[[int, str], None] | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self._events: collections.deque[dict[str, Any]] = collections.deque()
        self._posting = threading.Event()
        self.webhook_answers: list[int] = []
        self._server: _Server | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
        der = self.signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def start(self) -> FakeSendGrid:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        threading.Thread(target=self._post_events, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def delay(self) -> float:
        """How late to answer this request: `latency`, +/- up to `jitter`."""
        if not self.jitter:
            return self.latency
        with self._lock:
            return self.latency + self._random.uniform(-self.jitter, self.jitter)

    def stats(self) -> dict[str, int]:
        dupes = sum(n - 1 for n in self.delivery_ids.values() if n > 1)
        return {
            "requests": self.requests,
            "connections": self.connections,
            "recipients": self.recipients,
            "duplicates": dupes,
            "refusals": len(self.refusals),
            "unique": len(self.delivery_ids),
        }

    def copies(self) -> collections.Counter[str]:
        """How many copies each address received."""
        return collections.Counter(r.email for r in self.received)

    # --- the API ------------------------------------------------------------------------------

    def handle(self, headers: Any, raw: bytes) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """One POST /v3/mail/send: (status, headers, JSON body or None)."""
        with self._lock:
            self.requests += 1
            number = self.requests
            fault = self._next_fault()
        _current.number = number  # the handler's "answered" hook names this request
        if self.on_request:
            self.on_request(number, "received")
        if fault is not None and not fault.accept_first:
            return _fault_answer(fault)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refuse(
                401,
                [_error("The provided authorization grant is invalid, expired, or revoked", None)],
            )
        if not _is_json(headers.get("Content-Type")):
            return self._refuse(415, [_error("Content-Type should be application/json.", None)])
        try:
            body = parse(raw)
        except ValueError:
            return self._refuse(400, [_error("Bad Request", None)])
        problems = self.validate(body)
        if problems:
            return self._refuse(
                400, [_error(p.split(": ", 1)[1], p.split(": ", 1)[0]) for p in problems]
            )
        errors = check_limits(body, self.invalid)
        if errors:
            return self._refuse(400, errors)
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        self._accept(body, message_id, number)
        if self.on_request:
            self.on_request(number, "accepted")
        if fault is not None:
            return _fault_answer(fault)
        return 202, {"X-Message-Id": message_id}, None

    def _next_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self.faults.popleft()
        return fault

    def _refuse(
        self, status: int, errors: list[dict[str, Any]]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = {"errors": errors}
        with self._lock:
            self.refusals.append((status, body))
        return status, {}, body

    def _accept(self, body: dict[str, Any], message_id: str, number: int) -> None:
        people = body["personalizations"]
        # Each recipient's {edition, delivery}: how the benchmark checks exactly-once delivery.
        keys = [
            f"{args.get('edition')}:{args.get('delivery')}"
            for args in (p.get("custom_args") or {} for p in people)
        ]
        with self._lock:
            self.recipients += sum(len(p["to"]) for p in people)
            self.delivery_ids.update(keys)
            if self.record:
                self.received += [
                    Received(
                        p["to"][0]["email"],
                        message_id,
                        p.get("custom_args") or {},
                        p.get("substitutions") or {},
                        p.get("headers") or {},
                        p.get("subject") or body.get("subject", ""),
                        number,
                    )
                    for p in people
                ]
                self.bodies.append(body)
        if self.webhook_url:
            self._queue_events(body, message_id)

    # --- the Event Webhook --------------------------------------------------------------------

    def _queue_events(self, body: dict[str, Any], message_id: str) -> None:
        now = int(time.time())
        for index, p in enumerate(body["personalizations"]):
            address = p["to"][0]["email"]
            args = p.get("custom_args") or {}
            sg_message_id = f"{message_id}.filter{index}"
            kinds = [{"event": e} for e in self.events] + self.outcomes.get(address, [])
            for extra in kinds:
                event = {
                    "email": address,
                    "timestamp": now,
                    "sg_message_id": sg_message_id,
                    "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(15)).decode(),
                    "smtp-id": f"<{message_id}@fake.sendgrid>",
                    **args,
                    **extra,
                }
                self._events.append(event)
        self._posting.set()

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Queue hand-made events (they are signed and posted like the others)."""
        self._events.extend(events)
        self._posting.set()

    def _post_events(self) -> None:
        while True:
            self._posting.wait(0.05)
            batch = []
            while self._events and len(batch) < self.webhook_batch:
                batch.append(self._events.popleft())
            if not batch:
                self._posting.clear()
                continue
            self.webhook_answers.append(self.post_signed(json.dumps(batch)))

    def sign(self, payload: str, timestamp: str) -> str:
        signature = self.signing_key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def post_signed(self, payload: str, timestamp: str | None = None) -> int:
        """POST a signed event batch to the webhook URL; the app's HTTP status."""
        assert self.webhook_url
        timestamp = timestamp or str(int(time.time()))
        url = urllib.parse.urlsplit(self.webhook_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request(
                "POST",
                url.path,
                body=payload.encode(),
                headers={
                    "Content-Type": "application/json",
                    "X-Twilio-Email-Event-Webhook-Signature": self.sign(payload, timestamp),
                    "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
                },
            )
            return conn.getresponse().status
        finally:
            conn.close()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event was posted."""
        deadline = time.monotonic() + timeout
        while self._events or self._posting.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._events)} events still queued")
            time.sleep(0.02)


# The request a handler thread is serving (its number in `FakeSendGrid.requests`).
_current = threading.local()


def parse(raw: bytes) -> Any:
    """json.loads with the cyclic garbage collector paused: a request of 1000 personalizations
    makes some 20,000 containers, and every 700 of them would start a collection that walks
    all the young ones (JSON has no cycles; the objects are freed by reference counting)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(raw)
    finally:
        if enabled:
            gc.enable()


def _is_json(content_type: str | None) -> bool:
    """application/json, with or without parameters (charset=utf-8: sendgrid_json)."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def _fault_answer(fault: Fault) -> tuple[int, dict[str, str], dict[str, Any] | None]:
    if fault.delay:
        time.sleep(fault.delay)
    if fault.drop:
        return -1, {}, None
    return fault.status, dict(fault.headers), {"errors": [_error(fault.message, None)]}


class _Server(ThreadingHTTPServer):
    """A thread per connection; a backlog for a sender that opens dozens of connections at
    once (the default of 5 would make the rest wait a second for a SYN retry)."""

    daemon_threads = True
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSendGrid
    protocol_version = "HTTP/1.1"  # keep-alive for clients that want it

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/_fake/stats":
            self._answer(200, {}, self.fake.stats())
        else:
            self._answer(404, {}, {"errors": [_error("not found", None)]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/v3/mail/send":
            self._discard(length)
            self._answer(404, {}, {"errors": [_error("not found", None)]})
            return
        if length > MAX_BODY:
            self._discard(length)
            self._answer(413, {}, {"errors": [_error("content too large", None)]})
            return
        raw = self.rfile.read(length)
        started = time.monotonic()
        status, headers, body = self.fake.handle(self.headers, raw)
        late = self.fake.delay() - (time.monotonic() - started)
        if late > 0:
            time.sleep(late)  # the API's own time to answer (its validation counted in it)
        if status == -1:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._answer(status, headers, body)
        if self.fake.on_request:
            self.fake.on_request(_current.number, "answered")

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        remaining = str(max(0, 600 - self.fake.requests % 600))
        self.send_header("X-RateLimit-Limit", headers.pop("X-RateLimit-Limit", "600"))
        self.send_header("X-RateLimit-Remaining", headers.pop("X-RateLimit-Remaining", remaining))
        self.send_header(
            "X-RateLimit-Reset", headers.pop("X-RateLimit-Reset", str(int(time.time()) + 60))
        )
        for name, value in headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> None:
    """Serve as a separate process (the benchmark gives it its own core)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--validator", default="jsonschema-rs")
    parser.add_argument("--api-key", default="SG.bench-key")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before each answer (default 0)"
    )
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="+/- this many seconds on each (default 0)"
    )
    args = parser.parse_args(argv)
    fake = FakeSendGrid(
        args.api_key,
        validator=args.validator,
        record=False,
        latency=args.latency,
        jitter=args.jitter,
    ).start()
    print(fake.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
