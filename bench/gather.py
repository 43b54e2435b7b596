"""Gathering benchmark: concurrent fetching against one-after-another, and parse + dedup speed.

Serves 20 RSS feeds x 100 items from a local HTTP server (127.0.0.1, port 0, in a process of its
own) that waits 200 ms before answering each request, then measures:

1. fetching all 20 feeds with the bounded concurrent fetcher (default [gather] concurrency) vs
   one after another: goal <= 0.6 s and >= 6x faster;
2. the whole of `gather()` (fetch + parse + dedup) concurrently vs one source at a time;
3. parse + dedup of the 2,000 items alone (no network): goal <= 1 s. Each run starts with cold
   caches, and CPU time is printed beside wall time (a loaded machine inflates the latter). These
   feeds take the fast path (digest.gather.fastfeed); feedparser's own time on them is printed
   for comparison: it is what parsing cost before.

Runs from a clean checkout with `make bench`; needs nothing but the loopback interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser

from digest.config import GatherSettings
from digest.gather import GatherOptions, Limits, SourceSpec, gather
from digest.gather.decode import to_utf8_xml
from digest.gather.fastfeed import read_fast
from digest.gather.feeds import parse_feed
from digest.gather.fetch import HttpFetcher
from digest.gather.identity import canonical_url, deduplicate
from digest.gather.items import ParseContext
from tests.fakes.feed_server import FeedServer, Route

FEEDS = 20
ITEMS = 100
LATENCY_S = 0.2
NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
# A headline vocabulary of 3,000 made-up words (real headlines use many distinct words).
_SYLLABLES = [
    "ba",
    "ko",
    "ri",
    "ta",
    "mu",
    "sen",
    "dor",
    "vel",
    "ka",
    "lin",
    "tor",
    "mes",
    "pa",
    "ru",
    "gan",
    "fi",
    "lo",
    "de",
    "ne",
    "sar",
]
WORDS = sorted({"".join(random.Random(s).sample(_SYLLABLES, 3)) for s in range(6000)})[:3000]


def feed(n: int, rng: random.Random) -> bytes:
    items = []
    for i in range(ITEMS):
        # 5% of headlines are another desk's copy of the same story (near-duplicates to merge).
        seed = (0, i) if i % 20 == 0 else (n, i)
        words = random.Random(hash(seed)).sample(WORDS, 7)
        title = " ".join(words).capitalize() + (" today" if seed != (n, i) else "")
        when = NOW - timedelta(minutes=rng.randrange(60 * 24 * 14))
        summary = " ".join(rng.choice(WORDS) for _ in range(60))
        items.append(
            f"<item><title>{title}</title><link>https://desk{n}.example/{i}</link>"
            f"<guid>https://desk{n}.example/{i}</guid>"
            f"<pubDate>{when:%a, %d %b %Y %H:%M:%S +0000}</pubDate>"
            f"<description>&lt;p&gt;{summary} &amp;amp; more&lt;/p&gt;"
            f"&lt;img src=&quot;/img/{i}.jpg&quot;&gt;</description>"
            f"<author>desk{n}@desk{n}.example (Writer {n})</author></item>"
        )
    body = "".join(items)
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0">'
    return f"{head}<channel>{body}</channel></rss>".encode()


async def fetch_all(urls: list[str], concurrency: int) -> float:
    limits = Limits(concurrency=concurrency)
    started = time.perf_counter()
    async with HttpFetcher(limits) as fetcher:
        slots = asyncio.Semaphore(concurrency)

        async def one(url: str) -> int:
            async with slots:
                return len((await fetcher(url)).body)

        sizes = await asyncio.gather(*(one(u) for u in urls))
    assert all(sizes)
    return time.perf_counter() - started


def whole_gather(urls: list[str], concurrency: int) -> tuple[float, int]:
    options = GatherOptions(limits=Limits(concurrency=concurrency), max_items=ITEMS)
    started = time.perf_counter()
    result = gather([SourceSpec(url=u) for u in urls], now=NOW, options=options)
    assert all(r.ok for r in result.reports), [r.error for r in result.reports if not r.ok]
    return time.perf_counter() - started, len(result.candidates)


def parse_and_dedup(bodies: list[bytes]) -> tuple[float, float, int, int]:
    """(wall s, CPU s, items, articles), from cold caches."""
    canonical_url.cache_clear()
    started, cpu = time.perf_counter(), time.process_time()
    candidates = []
    for n, body in enumerate(bodies):
        ctx = ParseContext(url=f"https://desk{n}.example/feed.xml", now=NOW, max_items=ITEMS)
        candidates += parse_feed(body, ctx, "application/rss+xml").candidates
    merged = deduplicate(candidates)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall, cpu, len(candidates), len(merged)


def feedparser_alone(bodies: list[bytes]) -> float:
    """The share of parsing that is feedparser's own (with the options digest uses)."""
    started = time.perf_counter()
    for body in bodies:
        feedparser.parse(
            body,
            response_headers={"content-type": "application/xml; charset=utf-8"},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    return time.perf_counter() - started


def verdict(met: bool) -> str:
    return "OK" if met else "MISSED"


def bodies() -> list[bytes]:
    rng = random.Random(7)
    return [feed(n, rng) for n in range(FEEDS)]


def serve() -> None:
    """The feed server, in a process of its own (as the sites would be): its CPU must not
    compete with the gatherer's for one interpreter lock. Prints the URLs, serves until stdin
    closes."""
    with FeedServer() as server:
        urls = [
            server.add(f"/feed/{n}.xml", Route(body=body, delay_s=LATENCY_S))
            for n, body in enumerate(bodies())
        ]
        print(json.dumps(urls), flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def feed_server() -> Iterator[list[str]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    feeds = bodies()
    concurrency = GatherSettings().concurrency
    with feed_server() as urls:
        asyncio.run(fetch_all(urls[:1], 1))  # warm-up: imports, first connection
        concurrent = min(asyncio.run(fetch_all(urls, concurrency)) for _ in range(3))
        sequential = asyncio.run(fetch_all(urls, 1))
        gather_concurrent, count = min(whole_gather(urls, concurrency) for _ in range(2))
        gather_sequential, _ = whole_gather(urls, 1)
    parse_runs = [parse_and_dedup(feeds) for _ in range(5)]
    parse_s, _, parsed, merged = min(parse_runs)
    parse_cpu = min(run[1] for run in parse_runs)
    feedparser_s = min(feedparser_alone(feeds) for _ in range(3))
    fast = sum(read_fast(to_utf8_xml(body)[0]) is not None for body in feeds)

    kb = sum(len(b) for b in feeds) / 1024
    print(f"{FEEDS} feeds x {ITEMS} items ({kb:.0f} KB), {LATENCY_S * 1000:.0f} ms latency each")
    print(
        f"fetch, concurrent (concurrency {concurrency}): {concurrent:.3f} s   "
        f"one after another: {sequential:.3f} s   ratio {sequential / concurrent:.1f}x   "
        f"(goal <= 0.6 s, >= 6x): {verdict(concurrent <= 0.6 and sequential / concurrent >= 6)}"
    )
    print(
        f"gather() fetch+parse+dedup, concurrent: {gather_concurrent:.3f} s   "
        f"one source at a time: {gather_sequential:.3f} s   "
        f"ratio {gather_sequential / gather_concurrent:.1f}x   ({count} articles)"
    )
    print(
        f"parse + dedup of {parsed} items (no network): {parse_s:.3f} s "
        f"({parse_cpu:.3f} s CPU), "
        f"{parsed - merged} near-duplicates merged   (goal <= 1 s): "
        f"{'OK' if parse_s <= 1.0 else 'MISSED'}"
    )
    print(
        f"  {fast} of {FEEDS} feeds took the fast path; feedparser alone on them: "
        f"{feedparser_s:.3f} s ({feedparser_s / parse_s:.1f}x the whole parse + dedup)"
    )


if __name__ == "__main__":
    serve() if sys.argv[1:] == ["--serve"] else main()
