"""Gathering: every configured source → one deduplicated list of sanitised candidates.

Sources are read concurrently (asyncio; at most `concurrency` fetches in flight across all
sources and their article pages, each bounded in time, size and redirects), and parsed in one
thread of the gather's own as they arrive (gather.parsing). A failing source is
reported with its URL and the precise reason and skipped; the others still make the edition.
Editor picks are read last: a pick of an article another source already brought (or that is
already stored) is only marked, not fetched again.

`gather` is pure apart from the injected fetcher: `now` comes in, nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType

from digest.gather.candidate import Candidate
from digest.gather.fetch import (
    NO_VALIDATORS,
    Fetched,
    Fetcher,
    FetchError,
    HttpFetcher,
    Limits,
    Validators,
)
from digest.gather.identity import deduplicate, url_key
from digest.gather.items import ParseError
from digest.gather.parsing import parse_thread
from digest.gather.sources import read_picks, read_source
from digest.gather.values import (
    ERROR,
    NOT_MODIFIED,
    OK,
    GatherOptions,
    GatherResult,
    Outcome,
    PickMark,
    SourceReport,
    SourceSpec,
)

__all__ = [
    "ERROR",
    "NOT_MODIFIED",
    "NO_VALIDATORS",
    "OK",
    "FetchError",
    "Fetched",
    "Fetcher",
    "GatherOptions",
    "GatherResult",
    "HttpFetcher",
    "Limits",
    "ParseError",
    "PickMark",
    "SourceReport",
    "SourceSpec",
    "Validators",
    "gather",
    "gather_async",
]


class Bounded:
    """Wraps any fetcher: at most `limit` fetches at once, each within its timeout."""

    def __init__(self, fetcher: Fetcher, limit: int, timeout_s: float) -> None:
        self.fetcher = fetcher
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(limit)

    async def __call__(
        self, url: str, *, validators: Validators = NO_VALIDATORS, timeout_s: float | None = None
    ) -> Fetched:
        timeout = timeout_s or self.timeout_s
        async with self._slots:
            try:
                async with asyncio.timeout(timeout):
                    return await self.fetcher(url, validators=validators, timeout_s=timeout)
            except TimeoutError:
                raise FetchError(f"timed out after {timeout:g} s", "timeout") from None


def gather(
    sources: Sequence[SourceSpec],
    *,
    now: datetime,
    fetcher: Fetcher | None = None,
    options: GatherOptions = GatherOptions(),
) -> GatherResult:
    """Synchronous entry point (CLI, scheduler, web handlers running in a thread pool)."""
    coro = gather_async(sources, now=now, fetcher=fetcher, options=options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from inside an event loop
        return pool.submit(asyncio.run, coro).result()


async def gather_async(
    sources: Sequence[SourceSpec],
    *,
    now: datetime,
    fetcher: Fetcher | None = None,
    options: GatherOptions = GatherOptions(),
) -> GatherResult:
    with parse_thread():
        return await _gather(sources, now, fetcher, options)


async def _gather(
    sources: Sequence[SourceSpec],
    now: datetime,
    fetcher: Fetcher | None,
    options: GatherOptions,
) -> GatherResult:
    outcomes: list[Outcome | None] = [None] * len(sources)
    async with _fetcher(fetcher, options.limits) as raw:
        fetch = Bounded(raw, options.limits.concurrency, options.limits.timeout_s)
        plain = [i for i, s in enumerate(sources) if s.kind != "picks"]
        done = await asyncio.gather(*(read_source(sources[i], fetch, now, options) for i in plain))
        known = set(options.known_urls)
        for i, outcome in zip(plain, done, strict=True):
            outcomes[i] = outcome
            known.update(url_key(u) for c in outcome.candidates for u in (c.url, *c.aliases))
        picks = [i for i, s in enumerate(sources) if s.kind == "picks"]
        done = await asyncio.gather(
            *(read_picks(sources[i], fetch, now, options, known) for i in picks)
        )
        for i, outcome in zip(picks, done, strict=True):
            outcomes[i] = outcome
    return _combine([o for o in outcomes if o is not None], options)


def _combine(outcomes: list[Outcome], options: GatherOptions) -> GatherResult:
    result = GatherResult(reports=[o.report for o in outcomes])
    result.picks = [m for o in outcomes for m in o.picks]
    result.picks_complete = all(o.picks_complete for o in outcomes)
    marks = {url_key(m.url): m for m in result.picks}
    candidates: list[Candidate] = []
    for outcome in outcomes:
        for c in outcome.candidates:
            mark = marks.get(url_key(c.url))
            candidates.append(c.with_(is_pick=True, pick_note=mark.note) if mark else c)
    result.candidates = deduplicate(candidates, options.similarity)
    return result


class _fetcher:
    """The injected fetcher as it is, or an HttpFetcher opened and closed around the run."""

    def __init__(self, fetcher: Fetcher | None, limits: Limits) -> None:
        self.given = fetcher
        self.http = HttpFetcher(limits) if fetcher is None else None

    async def __aenter__(self) -> Fetcher:
        if self.http is not None:
            return await self.http.__aenter__()
        assert self.given is not None
        return self.given

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.http is not None:
            await self.http.__aexit__(exc_type, exc, tb)
