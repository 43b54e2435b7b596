"""Delivery throughput: 1,000,000 synthetic subscribers over 5 sections, sent through the SendGrid
backend to the fake SendGrid on 127.0.0.1 (its own process, full JSON-schema validation with the
compiled validator, every limit enforced).

Figures: recipients/s (plan + dispatch, and dispatch alone) and the sender's peak RSS on SQLite
with one worker and on PostgreSQL with one and two workers; one variant against 31 (every
non-empty subset of 5 sections: 32 distinct variants need a sixth section); the sendgrid
library's client against a keep-alive HTTP client on the same batches.

Goals: >= 50,000 recipients/s on SQLite with one worker; peak RSS <= 250 MB; 2 PostgreSQL
workers >= 1.6x one; many variants <= 1.2x the single-variant time.

BENCH_SEND_N=100000 for a quick run (default 1,000,000). PostgreSQL figures need the test
server (`make test` starts it; DIGEST_TEST_POSTGRES_URL or tests/.services.env); without it
they are skipped and the reason printed.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    API_KEY,
    NOW,
    ROOT,
    SECTIONS,
    child,
    cores_busy,
    fake_sendgrid,
    fake_stats,
    machine_cpu,
    peak_rss_mb,
    postgres_database,
    prepare,
    report,
    result_of,
    sqlite_url,
)
from tests.services_env import services

SCRIPT = Path(__file__).resolve()
N = int(os.environ.get("BENCH_SEND_N", "1000000"))
# The ratios (variants, PostgreSQL workers) on a smaller audience: the script stays near 3 min.
COMPARE_N = int(os.environ.get("BENCH_SEND_COMPARE_N", "100000"))
ALL_VARIANTS = [
    list(c) for r in range(1, len(SECTIONS) + 1) for c in itertools.combinations(SECTIONS, r)
]


# --- in the child process ---------------------------------------------------------------------


def _settings(url: str, host: str) -> Any:
    from pydantic import SecretStr

    from digest.config import load_settings

    settings = load_settings(
        ROOT / "digest.toml",
        database={"url": url},
        delivery={"backend": "sendgrid", "sendgrid_host": host, "batch_size": 1000},
    )
    return settings.model_copy(
        update={
            "secret_key": SecretStr("bench-" + "k" * 32),
            "sendgrid_api_key": SecretStr(API_KEY),
        }
    )


def _child(args: dict[str, Any]) -> dict[str, Any]:
    from digest.backends.sendgrid import SendGridBackend
    from digest.send import engine as send
    from digest.send.worker import Runtime
    from digest.store.db import make_engine, session_factory

    settings = _settings(args["url"], args["host"])
    engine = make_engine(args["url"])
    factory = session_factory(engine)
    out: dict[str, Any] = {}
    if args["mode"] in ("send", "plan"):
        started = time.perf_counter()
        out["planned"] = send.begin(factory, 1, NOW).planned
        out["plan_s"] = time.perf_counter() - started
    if args["mode"] in ("send", "work"):
        backend = SendGridBackend(API_KEY, args["host"])
        started = time.perf_counter()
        worker = send.run(factory, settings, backend, 1, runtime=Runtime())
        out["dispatch_s"] = time.perf_counter() - started
        out["counts"] = dict(worker.counts)
        out["variants"] = len(worker.variants)
        out["finished"] = send.finish(factory, 1, NOW)[1]
    if args["mode"] == "clients":
        out.update(_clients(factory, settings, args["host"], args["batches"]))
    out["rss_mb"] = peak_rss_mb()
    engine.dispose()
    return out


def _clients(factory: Any, settings: Any, host: str, batches: int) -> dict[str, Any]:
    """The same request bodies through the sendgrid library and through one keep-alive
    connection (http.client): what the library's connection-per-request costs."""
    import http.client
    import urllib.parse

    from digest.backends.sendgrid import SendGridBackend
    from digest.backends.sendgrid_json import CONTENT_TYPE, JsonText
    from digest.edition.queries import get_edition
    from digest.edition.views import edition_view
    from digest.send.claims import Claimed
    from digest.send.compose import Composer

    with factory() as session:
        view = edition_view(get_edition(session, 1))
    composer = Composer(settings, view, NOW, settings.secret_keys())
    backend = SendGridBackend(API_KEY, host)
    bodies = []
    for b in range(batches):
        rows = [
            Claimed(b * 1000 + i + 1, f"client{b}-{i}@bench.example", "", f"{b:016x}{i:016x}")
            for i in range(1000)
        ]
        bodies.append(backend.body(composer.batch(rows, f"bench{b}")))
    started = time.perf_counter()
    for body in bodies:  # what SendGridBackend.send_batch does with the body
        backend._client.client.mail.send.post(
            request_body=JsonText(body), request_headers={"Content-Type": CONTENT_TYPE}
        )
    library_s = time.perf_counter() - started
    where = urllib.parse.urlsplit(host)
    conn = http.client.HTTPConnection(where.hostname, where.port)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": CONTENT_TYPE}
    started = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/v3/mail/send", body.encode(), headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 202, response.status
    keepalive_s = time.perf_counter() - started
    conn.close()
    return {"library_s": library_s, "keepalive_s": keepalive_s, "requests": batches}


# --- in the parent ----------------------------------------------------------------------------


def _single(url: str, host: str) -> dict[str, Any]:
    before = machine_cpu()
    result = result_of(child(SCRIPT, {"mode": "send", "url": url, "host": host}))
    return {**result, "cores": cores_busy(before, machine_cpu())}


def _workers(url: str, host: str, count: int) -> dict[str, Any]:
    plan = result_of(child(SCRIPT, {"mode": "plan", "url": url, "host": host}))
    started, before = time.perf_counter(), machine_cpu()
    procs = [child(SCRIPT, {"mode": "work", "url": url, "host": host}) for _ in range(count)]
    results = [result_of(p) for p in procs]
    dispatch, cores = time.perf_counter() - started, cores_busy(before, machine_cpu())
    accepted = sum(r["counts"].get("accepted", 0) for r in results)
    return {
        "plan_s": plan["plan_s"],
        "dispatch_s": dispatch,
        "accepted": accepted,
        "rss_mb": max([plan["rss_mb"], *(r["rss_mb"] for r in results)]),
        "per_worker": [r["counts"].get("accepted", 0) for r in results],
        "cores": cores,
    }


def _line(label: str, n: int, r: dict[str, Any]) -> float:
    total = r["plan_s"] + r["dispatch_s"]
    report(
        f"{label:<38} {n / total:>8,.0f} recipients/s  (n={n:,}: plan {r['plan_s']:.1f} s + "
        f"dispatch {r['dispatch_s']:.1f} s = {total:.1f} s; dispatch alone "
        f"{n / r['dispatch_s']:,.0f}/s)  peak RSS {r['rss_mb']:.0f} MB  "
        f"machine CPU {r['cores']:.1f} of {os.cpu_count()} cores busy"
    )
    return total


def _check(url: str, n: int, r: dict[str, Any]) -> None:
    stats = fake_stats(url)
    accepted = r.get("accepted") or r.get("counts", {}).get("accepted")
    assert accepted == n, f"accepted {accepted} of {n}"
    assert stats["duplicates"] == 0 and stats["unique"] == n, stats


_RUNS = itertools.count()


def _sqlite_run(tmp: Path, n: int, variants: list[Any], label: str) -> float:
    url = sqlite_url(tmp, f"{label.replace(' ', '-')}-{n}-{next(_RUNS)}.db")  # a fresh file each
    prepare(url, n, variants)
    with fake_sendgrid() as host:
        r = _single(url, host)
        _check(host, n, r)
    return _line(f"SQLite, 1 worker, {label}", n, r)


def _postgres(n: int) -> None:
    base = services().get("DIGEST_TEST_POSTGRES_URL")
    if not base:
        report("PostgreSQL: skipped (no DIGEST_TEST_POSTGRES_URL; `make test` starts a server)")
        return
    dispatch = {}
    for count in (1, 2):
        with postgres_database(base) as url:
            prepare(url, n, [None])
            with fake_sendgrid() as host:
                r = _workers(url, host, count)
                _check(host, n, r)
            dispatch[count] = r["dispatch_s"]
            _line(f"PostgreSQL, {count} worker{'s' * (count > 1)}", n, r)
            if count > 1:
                report(f"   per worker: {r['per_worker']}")
    report(
        f"PostgreSQL 2 workers vs 1 (dispatch): {dispatch[1] / dispatch[2]:.2f}x  (goal >= 1.6x)"
    )


def _clients_figure(tmp: Path) -> None:
    url = sqlite_url(tmp, "clients.db")
    prepare(url, 0, [None])
    with fake_sendgrid() as host:
        r = result_of(child(SCRIPT, {"mode": "clients", "url": url, "host": host, "batches": 40}))
    report(
        f"sendgrid library {r['requests'] * 1000 / r['library_s']:,.0f} recipients/s vs keep-alive "
        f"http.client {r['requests'] * 1000 / r['keepalive_s']:,.0f}/s on the same 40 requests "
        f"of 1000: the library takes {r['library_s'] / r['keepalive_s']:.2f}x as long"
    )


def main() -> None:
    small = min(N, COMPARE_N)
    report(
        f"bench/send: {N:,} subscribers (comparisons on {small:,}), 5 sections, batches of "
        "1000, fake SendGrid in its own process on loopback"
    )
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        _sqlite_run(Path(tmp), N, [None], "1 variant")
        one = _sqlite_run(Path(tmp), small, [None], "1 variant")
        many = _sqlite_run(Path(tmp), small, ALL_VARIANTS, f"{len(ALL_VARIANTS)} variants")
        report(f"{len(ALL_VARIANTS)} variants vs 1: {many / one:.2f}x the time  (goal <= 1.2x)")
        _clients_figure(Path(tmp))
    _postgres(small)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
    else:
        main()
