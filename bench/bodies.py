"""Memory of `digest serve` while 20 concurrent 200 MB chunked bodies are refused (goal: the
server's resident memory grows by less than 50 MB).

A chunked body has no Content-Length: a server that checks only that header reads every byte
before any handler can refuse it (issue 19 measured 114 MB -> 504 MB for one such body). Here
`digest serve` runs in its own process on SQLite with the webhook's key set, and 20 clients at
once each send 200 MB of zeros, chunked, to the routes that take a body: the JSON API, the
subscribe form (urlencoded and a multipart file upload), the one-click endpoint, and the
webhook with well-formed, fresh, forged signature headers (the one refusal that must read its
route's 16 MB first). Each client reads the answer as soon as it arrives, as curl and browsers
do. The server's RSS is sampled every 10 ms from /proc. All on 127.0.0.1; bounded by a
deadline; everything lives in a temp directory.
"""

from __future__ import annotations

import base64
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = 20
BODY = 200 * 1024 * 1024
GOAL_MB = 50.0
DEADLINE_S = 120.0
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """The server's peak RSS while the clients run, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb(self.pid))


def signing_key() -> tuple[object, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def forged_headers(key: object) -> list[tuple[str, str]]:
    """Fresh, well-formed signature headers signing something else than the body."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    stamp = str(int(time.time()))
    signature = key.sign(b"not this body", ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    return [
        ("X-Twilio-Email-Event-Webhook-Signature", base64.b64encode(signature).decode()),
        ("X-Twilio-Email-Event-Webhook-Timestamp", stamp),
    ]


def targets(
    url: str, key: object, one_click: str
) -> list[tuple[str, list[tuple[str, str]], bytes]]:
    from tests.web.test_bodies import MULTIPART_FILE

    json_type = [("Content-Type", "application/json")]
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    multipart = [("Content-Type", "multipart/form-data; boundary=b")]
    return [
        ("/api/subscribe", json_type, b""),
        ("/subscribe", form, b""),
        ("/subscribe", multipart, MULTIPART_FILE),
        (one_click, form, b""),
        ("/webhooks/sendgrid", [*json_type, *forged_headers(key)], b""),
    ]


def subscriber_link(db: Path, secret: str) -> str:
    """One pending subscriber's unsubscribe path (the one-click route needs a genuine token)."""
    from datetime import UTC, datetime

    from digest.store.db import open_database, session_factory, transaction
    from subscribers.models import Subscriber, new_public_id
    from subscribers.tokens import UNSUBSCRIBE, make_token

    now = datetime.now(UTC)
    public_id = new_public_id()
    engine = open_database(f"sqlite:///{db}")
    with transaction(session_factory(engine)) as session:
        session.add(
            Subscriber(
                public_id=public_id,
                email="bench@example.com",
                status="active",
                created_at=now,
                updated_at=now,
                confirmed_at=now,
            )
        )
    engine.dispose()
    return f"/u/{make_token([secret], UNSUBSCRIBE, public_id, now)}"


def main() -> None:
    from bench.web import SECRET, free_port, start_server
    from tests.web import rawhttp

    key, public = signing_key()
    with tempfile.TemporaryDirectory(prefix="digest-bench-bodies-") as tmp:
        tmpdir = Path(tmp)
        port = free_port()
        server = start_server(tmpdir, port, {"DIGEST_DELIVERY__WEBHOOK_PUBLIC_KEY": public})
        url = f"http://127.0.0.1:{port}"
        try:
            kinds = targets(url, key, subscriber_link(tmpdir / "web.db", SECRET))
            # Warm up: every route once with a small body, so that what is measured is the
            # bodies, not the first import of a code path.
            for path, headers, prefix in kinds:
                rawhttp.send_body(url, path, headers, total=256 * 1024, prefix=prefix)
            before = rss_mb(server.pid)
            jobs = [kinds[i % len(kinds)] for i in range(CLIENTS)]
            started = time.perf_counter()
            with Sampler(server.pid) as sampler, ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(
                    pool.map(
                        lambda job: rawhttp.send_body(
                            url, job[0], job[1], total=BODY, prefix=job[2]
                        ),
                        jobs,
                        timeout=DEADLINE_S,
                    )
                )
            elapsed = time.perf_counter() - started
            after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    statuses = Counter(a.status for a in answers)
    sent = sum(a.sent for a in answers)
    growth = sampler.peak - before
    print(
        f"digest serve (uvicorn, SQLite) on 127.0.0.1: {CLIENTS} clients at once, each a "
        f"{BODY // MB} MB chunked body ({len(kinds)} routes: JSON API, form, multipart upload, "
        "one-click, webhook with forged signature headers)"
    )
    print(
        f"  answers: {dict(sorted(statuses.items()))} in {elapsed:.1f} s; the clients got "
        f"{sent / MB:,.0f} MB of {CLIENTS * BODY / MB:,.0f} MB out before the server stopped "
        "reading"
    )
    verdict = "OK" if growth < GOAL_MB and set(statuses) == {413} else "NOT MET"
    print(
        f"  server RSS {before:.1f} MB before, peak {sampler.peak:.1f} MB, {after:.1f} MB after:"
        f" grew {growth:.1f} MB  (goal < {GOAL_MB:.0f} MB, every body refused 413): {verdict}"
    )


if __name__ == "__main__":
    main()
