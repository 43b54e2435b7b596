"""Shared by the benchmarks: temporary databases filled fast, the fake SendGrid in a process of
its own, child processes that report their own peak RSS, and figure printing.

Everything talks to 127.0.0.1 only and cleans up after itself.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from digest.store.db import make_engine, session_factory, upgrade  # noqa: E402
from tests.send_helpers import make_edition  # noqa: E402

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SECTIONS = ("Middle East", "Europe", "Asia", "Military Industrial Complex", "Diplomacy")
API_KEY = "SG.bench-key"


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_cpu() -> tuple[float, float]:
    """(CPU-seconds every core of the machine spent busy so far, now): two of these bracket a
    run, and `cores_busy` says how many cores it kept busy (Linux /proc/stat; idle and iowait
    count as idle). On a small machine that is what bounds a second worker's gain."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK"), time.perf_counter()


def cores_busy(before: tuple[float, float], after: tuple[float, float]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1e-9)


# --- databases --------------------------------------------------------------------------------


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}"


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards; yields its URL."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, n: int, variants: Sequence[Sequence[str] | None]) -> None:
    """Migrate, add one edition with two articles per section, and `n` active subscribers whose
    sections cycle through `variants` (None: every section)."""
    engine = make_engine(url)
    upgrade(engine)
    # Summaries of a realistic length: the body's size is part of what a send costs.
    make_edition(
        session_factory(engine), NOW, summary="A summary of the story, about forty words long. " * 3
    )
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        _subscribers_pg(engine, n, variants)
    else:
        _subscribers_sqlite(engine, n, variants)
    engine.dispose()
    print(f"   (prepared {n:,} subscribers in {time.perf_counter() - started:.1f} s)", flush=True)


def _rows(n: int, variants: Sequence[Sequence[str] | None]) -> Iterator[tuple[Any, ...]]:
    encoded = [None if v is None else json.dumps(list(v)) for v in variants]
    for i in range(n):
        yield (uuid.uuid4().hex, f"user{i}@bench.example", "active", encoded[i % len(encoded)])


def _subscribers_sqlite(engine: Engine, n: int, variants: Sequence[Sequence[str] | None]) -> None:
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.executemany(
            "INSERT INTO subscribers (public_id, email, status, sections, created_at, updated_at,"
            " confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((*row, stamp, stamp, stamp) for row in _rows(n, variants)),
        )


def _subscribers_pg(engine: Engine, n: int, variants: Sequence[Sequence[str] | None]) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            copy_sql = (
                "COPY subscribers (public_id, email, status, sections, created_at, updated_at,"
                " confirmed_at) FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for row in _rows(n, variants):
                    copy.write_row((*row, NOW, NOW, NOW))


# --- the fake SendGrid ------------------------------------------------------------------------


@contextmanager
def fake_sendgrid(
    validator: str = "jsonschema-rs", latency: float = 0.0, jitter: float = 0.0
) -> Iterator[str]:
    """The fake SendGrid in its own process (its own core), answering each request `latency`
    seconds (+/- `jitter`) late; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.sendgrid",
            "--validator",
            validator,
            "--api-key",
            API_KEY,
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = proc.stdout.readline().strip()
    try:
        yield url
    finally:
        proc.stdin.close()
        proc.wait(30)


def fake_stats(url: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=30) as response:
        return dict(json.load(response))


# --- child processes --------------------------------------------------------------------------


def child(script: Path, args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), "--child", json.dumps(args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def result_of(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {out[-2000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def report(line: str) -> None:
    print(line, flush=True)
