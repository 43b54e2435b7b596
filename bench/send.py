"""Delivery throughput at real-world latency: `digest send` itself (the command, default settings:
[delivery] concurrency 32, batches of 1000), against the fake SendGrid in a process of its own
answering each request 250 ms late (+/- 50 ms), as a publication with a million subscribers meets
the real API. Every figure is printed against its goal, with the machine's busy cores beside it
(other work on a shared machine inflates the times).

1. 1,000,000 subscribers, SQLite, one worker: recipients/s end to end (the command's own wall
   clock: process start, preflight, plan and sending) >= 50,000; the plan (freezing the
   audience) <= 3 s, with the preflight apart; the sender's CPU per recipient (getrusage of the
   command and its children, the whole command; the fake's CPU is its own process's) <= 10 us;
   its peak RSS <= 250 MB.
2. The same with a fake that answers at once: the CPU ceiling.
3. 31 variants against 1 on as many subscribers: <= 1.2x the time, at 1,000,000 (against run
   1); also on 100,000, where each variant's partly full last batch is a larger share.
4. PostgreSQL, 2 `digest worker` processes against 1, [delivery] concurrency 4 each, 250 ms:
   >= 1.8x the sending rate.
5. The outbox backend: 10,000 messages written >= 5,000 messages/s.
6. The smtp backend against an aiosmtpd sink in a process of its own: messages/s.

BENCH_SEND_N=100000 for a quick run (default 1,000,000). PostgreSQL figures need the test server
(`make test` starts it; DIGEST_TEST_POSTGRES_URL or tests/.services.env); without it they are
skipped and the reason printed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench._common import (
    API_KEY,
    ROOT,
    SECTIONS,
    cores_busy,
    fake_sendgrid,
    fake_stats,
    machine_cpu,
    postgres_database,
    prepare,
    report,
    sqlite_url,
)
from digest.store.db import make_engine
from tests.services_env import services

N = int(os.environ.get("BENCH_SEND_N", "1000000"))
COMPARE_N = int(os.environ.get("BENCH_SEND_COMPARE_N", "100000"))
LATENCY, JITTER = 0.25, 0.05
OUTBOX_N, SMTP_N = 10_000, 5_000
NOW = "2026-11-20T14:00:00Z"  # bench._common.NOW: the edition's cut-off
ALL_VARIANTS = [
    list(c) for r in range(1, len(SECTIONS) + 1) for c in itertools.combinations(SECTIONS, r)
]
_TOOK = re.compile(r"Took ([\d.]+) s: preflight ([\d.]+) s, plan ([\d.]+) s, sending ([\d.]+) s")


@dataclass
class Run:
    """One `digest send`, as its caller sees it."""

    n: int
    wall_s: float
    preflight_s: float
    plan_s: float
    send_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    rss_mb: float
    cores: float

    @property
    def rate(self) -> float:
        return self.n / self.wall_s

    @property
    def worked_s(self) -> float:
        """Preflight, plan and sending: the command's work without its start-up."""
        return self.preflight_s + self.plan_s + self.send_s


def _env(db_url: str, **delivery: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode cached
    env.update(
        DIGEST_CONFIG=str(ROOT / "digest.toml"),
        DIGEST_DATABASE__URL=db_url,
        DIGEST_SECRET_KEY="bench-" + "k" * 32,
        DIGEST_SENDGRID_API_KEY=API_KEY,
        COLUMNS="120",
    )
    env.update({f"DIGEST_DELIVERY__{k.upper()}": v for k, v in delivery.items()})
    return env


def send(db_url: str, n: int, *args: str, **delivery: str) -> Run:
    """`digest send` as a person runs it, with its wall clock and its CPU and peak RSS (os.wait4:
    the command and every process it waited for, its worker processes included)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        before, started = machine_cpu(), time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "--now", NOW, *args],
            cwd=ROOT,
            env=_env(db_url, **delivery),
            stdout=out,
            stderr=err,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        cores = cores_busy(before, machine_cpu())
        out.seek(0)
        err.seek(0)
        printed, complaint = out.read(), err.read()
    took = _TOOK.search(printed)
    if proc.returncode != 0 or took is None:
        raise RuntimeError(f"digest send failed ({proc.returncode}): {printed[-1500:]} {complaint}")
    _, preflight, plan, sending = (float(g) for g in took.groups())
    return Run(
        n, wall, preflight, plan, sending, usage.ru_utime + usage.ru_stime, usage.ru_utime,
        usage.ru_stime, usage.ru_maxrss / 1024, cores,
    )  # fmt: skip


def _check(host: str, n: int) -> None:
    stats = fake_stats(host)
    assert stats["unique"] == n and stats["duplicates"] == 0, stats


def _goal(ok: bool) -> str:
    return "OK" if ok else "NOT MET"


def _cores(run: Run) -> str:
    return f"machine {run.cores:.1f} of {os.cpu_count()} cores busy"


# --- the figures --------------------------------------------------------------------------------


def headline(tmp: Path, prepared: Path, latency: float) -> Run:
    url = _copy(prepared, tmp / f"send-{latency}.db")
    with fake_sendgrid(latency=latency, jitter=JITTER if latency else 0.0) as host:
        run = send(url, N, backend="sendgrid", sendgrid_host=host)
        _check(host, N)
    label = f"fake at {latency * 1000:.0f} ms" if latency else "fake answering at once"
    report(
        f"SQLite, 1 worker, {label}: {run.rate:>8,.0f} recipients/s end to end  "
        f"(n={N:,}: {run.wall_s:.1f} s = start-up {run.wall_s - run.worked_s:.1f} s + preflight "
        f"{run.preflight_s:.1f} s + plan {run.plan_s:.1f} s + sending {run.send_s:.1f} s at "
        f"{N / run.send_s:,.0f}/s; CPU {run.cpu_s / N * 1e6:.1f} us per recipient)  {_cores(run)}"
    )
    return run


def goals(run: Run) -> None:
    cpu_us = run.cpu_s / N * 1e6
    report(
        f"   end to end {run.rate:,.0f} recipients/s   goal >= 50,000/s: "
        f"{_goal(run.rate >= 50_000)}"
    )
    report(
        f"   plan {run.plan_s:.1f} s for {N:,} (preflight {run.preflight_s:.2f} s apart)   goal "
        f"<= 3 s: {_goal(run.plan_s <= 3)}"
    )
    report(
        f"   sender CPU {cpu_us:.1f} us per recipient ({run.cpu_s:.1f} s: user {run.user_s:.1f} "
        f"s, system {run.sys_s:.1f} s; the whole command)   goal <= 10 us: {_goal(cpu_us <= 10)}"
    )
    report(f"   peak RSS {run.rss_mb:.0f} MB   goal <= 250 MB: {_goal(run.rss_mb <= 250)}")


def variants(tmp: Path, one: Run) -> None:
    """31 variants against 1, the same number of subscribers: at the headline's size against its
    run at 250 ms (the goal), and on COMPARE_N. A variant's last batch is partly full, so 31
    variants take more requests than one (124 against 100 for 100,000; 1,023 against 1,000 for
    a million), and at 250 ms with 32 in flight requests are what sending takes: the smaller
    audience shows that share, the larger one what the code adds."""
    width = len(ALL_VARIANTS)
    times = {}
    for n in (COMPARE_N, N):
        for label, mix in (("1 variant", [None]), (f"{width} variants", ALL_VARIANTS)):
            if n == N and mix == [None]:
                times[n, label] = one.worked_s  # the headline's own run
                continue
            url = sqlite_url(tmp, f"variants-{len(mix)}-{n}.db")
            prepare(url, n, mix)
            with fake_sendgrid(latency=LATENCY, jitter=JITTER) as host:
                run = send(url, n, backend="sendgrid", sendgrid_host=host)
                _check(host, n)
            Path(url.removeprefix("sqlite:///")).unlink()
            times[n, label] = run.worked_s
            report(
                f"SQLite, {label:<11} {n / run.worked_s:>8,.0f} recipients/s  (n={n:,}: "
                f"preflight {run.preflight_s:.2f} s + plan {run.plan_s:.2f} s + sending "
                f"{run.send_s:.2f} s; {_requests(n, len(mix))} requests; CPU "
                f"{run.cpu_s / n * 1e6:.1f} us per recipient)  {_cores(run)}"
            )
        ratio = times[n, f"{width} variants"] / times[n, "1 variant"]
        goal = f"goal <= 1.2x: {_goal(ratio <= 1.2)}" if n == N else "(requests: see above)"
        report(f"{width} variants vs 1 on {n:,}: {ratio:.2f}x the time  {goal}")


def _requests(n: int, variants: int, size: int = 1000) -> int:
    """Requests a send of `n` subscribers spread evenly over `variants` makes."""
    counts = [n // variants + (1 if v < n % variants else 0) for v in range(variants)]
    return sum(-(-count // size) for count in counts)


def postgres() -> None:
    base = services().get("DIGEST_TEST_POSTGRES_URL")
    if not base:
        report("PostgreSQL: skipped (no DIGEST_TEST_POSTGRES_URL; `make test` starts a server)")
        return
    rates = {}
    for count in (1, 2):
        with postgres_database(base) as url:
            prepare(url, COMPARE_N, [None])
            with fake_sendgrid(latency=LATENCY, jitter=JITTER) as host:
                run = send(
                    url, COMPARE_N, "--workers", str(count),
                    backend="sendgrid", sendgrid_host=host, concurrency="4",
                )  # fmt: skip
                _check(host, COMPARE_N)
            rows, seconds = _all_working(url)
        rates[count] = rows / seconds
        report(
            f"PostgreSQL, {count} worker{'s' * (count > 1)}, concurrency 4 each, 250 ms: "
            f"{rates[count]:>8,.0f} recipients/s  ({rows:,} of {COMPARE_N:,} answered in the "
            f"{seconds:.1f} s every worker was running; plan {run.plan_s:.1f} s, sending "
            f"{run.send_s:.1f} s with the workers' start-up; peak RSS {run.rss_mb:.0f} MB)  "
            f"{_cores(run)}"
        )
    ratio = rates[2] / rates[1]
    report(f"PostgreSQL 2 workers vs 1: {ratio:.2f}x  goal >= 1.8x: {_goal(ratio >= 1.8)}")


def _all_working(url: str) -> tuple[int, float]:
    """The recipients answered from the moment the last worker began (its process started and
    registered) to the last answer, and those seconds, from the ledger: the rate of all the
    workers together, not how long Python took to start each of them on a busy machine."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            began = conn.execute(text("SELECT max(started_at) FROM send_workers")).scalar_one()
            ended = conn.execute(text("SELECT max(updated_at) FROM send_batches")).scalar_one()
            rows = conn.execute(
                text("SELECT coalesce(sum(size), 0) FROM send_batches WHERE updated_at > :t"),
                {"t": began},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(rows), float((ended - began).total_seconds())


def outbox(tmp: Path) -> None:
    url = sqlite_url(tmp, "outbox.db")
    prepare(url, OUTBOX_N, [None])
    folder = tmp / "outbox"
    run = send(url, OUTBOX_N, backend="outbox", outbox_dir=str(folder))
    written = sum(1 for _ in (folder / "edition-1").glob("*.eml"))
    size = sum(f.stat().st_size for f in (folder / "edition-1").glob("*.eml")) / written
    assert written == OUTBOX_N, written
    rate = OUTBOX_N / run.send_s
    report(
        f"outbox backend: {rate:,.0f} messages/s  ({OUTBOX_N:,} .eml files of {size / 1024:.0f} "
        f"KB in {run.send_s:.1f} s; {OUTBOX_N / run.wall_s:,.0f}/s end to end; CPU "
        f"{run.cpu_s / OUTBOX_N * 1e6:.0f} us per message)  goal >= 5,000 messages/s: "
        f"{_goal(rate >= 5_000)}  {_cores(run)}"
    )
    shutil.rmtree(folder)


def smtp(tmp: Path) -> None:
    url = sqlite_url(tmp, "smtp.db")
    prepare(url, SMTP_N, [None])
    with _smtp_sink() as (where, counts):
        host, port = where.rsplit(":", 1)
        run = send(
            url, SMTP_N, backend="smtp", smtp_host=host, smtp_port=port, smtp_security="none"
        )
    assert counts["unique"] == SMTP_N and counts["duplicates"] == 0, counts
    report(
        f"smtp backend (aiosmtpd sink in its own process, no TLS): {SMTP_N / run.send_s:,.0f} "
        f"messages/s  ({SMTP_N:,} messages over 8 connections at once, in {run.send_s:.1f} s; "
        f"sender CPU {run.cpu_s / SMTP_N * 1e6:.0f} us per message)  {_cores(run)}"
    )


@contextlib.contextmanager
def _smtp_sink() -> Iterator[tuple[str, dict[str, int]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.smtp"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    counts: dict[str, int] = {}
    try:
        yield proc.stdout.readline().strip(), counts
    finally:
        proc.stdin.close()
        counts.update(json.loads(proc.stdout.readline()))
        proc.wait(30)


def _copy(prepared: Path, target: Path) -> str:
    shutil.copyfile(prepared, target)
    return f"sqlite:///{target}"


def main() -> None:
    report(
        f"bench/send: `digest send` for {N:,} subscribers (comparisons on {COMPARE_N:,}), 5 "
        f"sections, default settings (concurrency 32, batches of 1000); the fake SendGrid in "
        f"its own process answers {LATENCY * 1000:.0f} ms (+/- {JITTER * 1000:.0f} ms) late"
    )
    subprocess.run(  # the bytecode an installed package would have (PYTHONDONTWRITEBYTECODE)
        [sys.executable, "-m", "digest", "--help"], cwd=ROOT, env=_env("sqlite://"),
        capture_output=True, check=True,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="digest-bench-send-") as name:
        tmp = Path(name)
        prepared = tmp / "prepared.db"
        prepare(f"sqlite:///{prepared}", N, [None])
        one = headline(tmp, prepared, LATENCY)
        goals(one)
        headline(tmp, prepared, 0.0)
        for path in tmp.glob("send-*.db*"):
            path.unlink()
        variants(tmp, one)
        outbox(tmp)
        smtp(tmp)
    postgres()


if __name__ == "__main__":
    main()
