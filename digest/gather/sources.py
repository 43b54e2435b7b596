"""Reading one source of each kind: fetch, parse, follow article links, report.

Nothing here raises for a bad source: every failure becomes a SourceReport with the URL and the
precise reason, so one broken source never stops the others. Parsing runs in the gather's parse
thread (gather.parsing) so that slow parsing of one feed does not hold up the network for the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from digest.gather.candidate import Candidate
from digest.gather.feeds import parse_feed
from digest.gather.fetch import NO_VALIDATORS, Fetched, Fetcher, FetchError, Validators
from digest.gather.identity import canonical_url, url_key
from digest.gather.items import ParseContext, Parsed, ParseError, date_flag
from digest.gather.links import resolve_link
from digest.gather.listings import article_links
from digest.gather.pages import html_tree, parse_page
from digest.gather.parsing import in_parse_thread
from digest.gather.picks import Pick, PicksError, parse_picks
from digest.gather.sanitize import safe_url
from digest.gather.sitemaps import SitemapEntry, parse_sitemap, recent
from digest.gather.values import (
    ERROR,
    NOT_MODIFIED,
    GatherOptions,
    Outcome,
    PickMark,
    SourceReport,
    SourceSpec,
)

MAX_CHILD_SITEMAPS = 10
Reader = Callable[[SourceSpec, Fetched, ParseContext, Fetcher, GatherOptions], Awaitable[Parsed]]


async def read_source(
    spec: SourceSpec, fetch: Fetcher, now: datetime, options: GatherOptions
) -> Outcome:
    started = time.perf_counter()
    ctx = context(spec, now, options)
    validators = spec.validators if options.conditional_get else NO_VALIDATORS
    try:
        fetched = await fetch(spec.url, validators=validators, timeout_s=spec.timeout_s)
        if fetched.not_modified:
            report = _report(spec, started, status=NOT_MODIFIED, validators=validators)
            return Outcome(report)
        reader = READERS.get(spec.kind)
        if reader is None:
            raise ParseError(f"unknown source kind {spec.kind!r} (feed, sitemap, listing, page)")
        parsed = await reader(spec, fetched, ctx.at(fetched.url), fetch, options)
    except (FetchError, ParseError) as exc:
        return Outcome(_failed(spec, started, exc))
    warnings = list(fetched.warnings) + parsed.warnings
    if fetched.moved_to:
        warnings.insert(0, f"moved permanently to {fetched.moved_to}: update the source's url")
    report = _report(
        spec,
        started,
        candidates=parsed.candidates,
        warnings=warnings,
        validators=fetched.validators,
        pages=len(parsed.links),
    )
    return Outcome(report, parsed.candidates)


def context(spec: SourceSpec, now: datetime, options: GatherOptions) -> ParseContext:
    return ParseContext(
        url=spec.url,
        now=now,
        source_url=spec.url,
        section=spec.section,
        sections=options.sections,
        excerpt_words=options.excerpt_words,
        max_items=options.max_items,
    )


def _report(
    spec: SourceSpec,
    started: float,
    *,
    candidates: list[Candidate] | None = None,
    status: str = "ok",
    warnings: list[str] | None = None,
    validators: Validators = NO_VALIDATORS,
    pages: int = 0,
) -> SourceReport:
    items = candidates or []
    dates = [c.published_at for c in items if c.published_at and c.date_flag != "future"]
    return SourceReport(
        url=spec.url,
        ok=True,
        items=len(items),
        newest=max(dates) if dates else None,
        kind=spec.kind,
        name=spec.name,
        status=status,
        elapsed_s=time.perf_counter() - started,
        warnings=tuple(warnings or ()),
        validators=validators,
        pages=pages,
    )


def _failed(spec: SourceSpec, started: float, exc: FetchError | ParseError) -> SourceReport:
    return SourceReport(
        url=spec.url,
        ok=False,
        error=str(exc),
        kind=spec.kind,
        name=spec.name,
        status=ERROR,
        error_kind=exc.kind,
        elapsed_s=time.perf_counter() - started,
    )


async def _feed(
    spec: SourceSpec, fetched: Fetched, ctx: ParseContext, fetch: Fetcher, opt: GatherOptions
) -> Parsed:
    return await in_parse_thread(parse_feed, fetched.body, ctx, fetched.content_type)


async def _page(
    spec: SourceSpec, fetched: Fetched, ctx: ParseContext, fetch: Fetcher, opt: GatherOptions
) -> Parsed:
    return await in_parse_thread(parse_page, fetched.body, ctx, fetched.content_type)


async def _listing(
    spec: SourceSpec, fetched: Fetched, ctx: ParseContext, fetch: Fetcher, opt: GatherOptions
) -> Parsed:
    tree, warning = await in_parse_thread(html_tree, fetched.body, fetched.content_type)
    limit = spec.max_pages or opt.max_pages
    links = article_links(tree, fetched.url, pattern=spec.link_pattern, limit=limit)
    parsed = Parsed(warnings=[warning] if warning else [])
    if not links.urls:
        hint = "link_pattern matches none" if spec.link_pattern else "set link_pattern?"
        parsed.warnings.append(f"no article links found on the page ({hint})")
        return parsed
    if links.found > limit:
        parsed.warnings.append(f"{links.found} article links: read the first {limit} (max_pages)")
    await _read_pages(links.urls, ctx, fetch, spec, parsed)
    return parsed


async def _sitemap(
    spec: SourceSpec, fetched: Fetched, ctx: ParseContext, fetch: Fetcher, opt: GatherOptions
) -> Parsed:
    limit = opt.limits.max_bytes
    sitemap = await in_parse_thread(
        parse_sitemap, fetched.body, fetched.url, fetched.content_type, limit
    )
    parsed = Parsed()
    entries = list(sitemap.entries)
    children, _ = recent(sitemap.children, opt.since, MAX_CHILD_SITEMAPS)
    for child, result in zip(
        children, await _fetch_all([c.url for c in children], fetch, spec), strict=True
    ):
        if isinstance(result, Exception):
            parsed.warnings.append(f"sitemap {child.url}: {result}")
            continue
        try:
            entries += parse_sitemap(result.body, result.url, result.content_type, limit).entries
        except ParseError as exc:
            parsed.warnings.append(f"sitemap {child.url}: {exc}")
    if sitemap.skipped:
        parsed.warnings.append(f"{sitemap.skipped} <loc> entries skipped: not on this site")
    chosen, more = recent(entries, opt.since, spec.max_pages or opt.max_pages)
    if more:
        parsed.warnings.append(f"{more} more recent pages not read (max_pages)")
    if sitemap.children and not entries:
        raise ParseError("none of the index's recent sitemaps could be read")
    by_url = {e.url: e for e in chosen}
    await _read_pages(list(by_url), ctx, fetch, spec, parsed, fallback=by_url)
    return parsed


async def _read_pages(
    urls: list[str],
    ctx: ParseContext,
    fetch: Fetcher,
    spec: SourceSpec,
    parsed: Parsed,
    fallback: dict[str, SitemapEntry] | None = None,
) -> None:
    """Article pages, concurrently; failures are warnings unless every page failed."""
    results = await _pages(urls, ctx, fetch, spec)
    failures = []
    for url, result in zip(urls, results, strict=True):
        parsed.links.append(url)
        if isinstance(result, Candidate):
            parsed.candidates.append(result)
            continue
        entry = (fallback or {}).get(url)
        if entry is not None and entry.news_title:
            parsed.candidates.append(_from_sitemap(entry, ctx))
            parsed.warnings.append(f"page {url}: {result} (used the sitemap's news title)")
        else:
            failures.append(f"{url}: {result}")
    parsed.warnings += [f"page {f}" for f in failures]
    if failures and not parsed.candidates:
        raise ParseError(f"none of the {len(urls)} article pages could be read ({failures[0]})")


async def _pages(
    urls: list[str], ctx: ParseContext, fetch: Fetcher, spec: SourceSpec
) -> list[Candidate | Exception]:
    async def one(url: str) -> Candidate | Exception:
        try:
            page = await fetch(url, timeout_s=spec.timeout_s)
            result = await in_parse_thread(
                parse_page, page.body, ctx.at(page.url), page.content_type
            )
        except (FetchError, ParseError) as exc:
            return exc
        return result.candidates[0]

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def _fetch_all(
    urls: list[str], fetch: Fetcher, spec: SourceSpec
) -> list[Fetched | Exception]:
    async def one(url: str) -> Fetched | Exception:
        try:
            return await fetch(url, timeout_s=spec.timeout_s)
        except FetchError as exc:
            return exc

    return list(await asyncio.gather(*(one(u) for u in urls)))


def _from_sitemap(entry: SitemapEntry, ctx: ParseContext) -> Candidate:
    published, flag = date_flag(entry.lastmod, ctx.now)
    return Candidate(
        url=entry.url,
        title=entry.news_title,
        image_url=entry.image,
        section=ctx.section,
        published_at=published,
        date_flag=flag,
        source_url=ctx.source_url,
    )


READERS: dict[str, Reader] = {
    "feed": _feed,
    "page": _page,
    "listing": _listing,
    "sitemap": _sitemap,
}


async def read_picks(
    spec: SourceSpec, fetch: Fetcher, now: datetime, options: GatherOptions, known: set[str]
) -> Outcome:
    """Picks already gathered (or stored) are only marked; the others are fetched as pages."""
    started = time.perf_counter()
    try:
        fetched = await fetch(spec.url, timeout_s=spec.timeout_s)
        picks = parse_picks(fetched.body, spec.url, options.sections)
    except (FetchError, PicksError) as exc:
        error = exc if isinstance(exc, FetchError) else ParseError(str(exc))
        return Outcome(_failed(spec, started, error), picks_complete=False)
    ctx = context(spec, now, options).at(fetched.url)
    targets = {p: _pick_url(p.url, fetched.url) for p in picks.picks}
    wanted = [u for u in targets.values() if u and url_key(u) not in known]
    pages = dict(zip(wanted, await _pages(wanted, ctx, fetch, spec), strict=True))
    outcome = Outcome(_report(spec, started), picks_complete=not picks.problems)
    warnings = list(picks.problems)
    for pick, url in targets.items():
        _resolve_pick(pick, url, pages, now, ctx, outcome, warnings)
    outcome.report = _report(
        spec, started, candidates=outcome.candidates, warnings=warnings, pages=len(wanted)
    )
    outcome.report = replace(outcome.report, items=len(outcome.picks))
    return outcome


def _pick_url(url: str, picks_file: str) -> str | None:
    """An http(s) URL as it is; a relative path against the picks file's directory."""
    if "://" in url and not url.lower().startswith("file://"):
        return safe_url(url)
    return resolve_link(url, picks_file)


def _resolve_pick(
    pick: Pick,
    url: str | None,
    pages: dict[str, Candidate | Exception],
    now: datetime,
    ctx: ParseContext,
    outcome: Outcome,
    warnings: list[str],
) -> None:
    page = pages.get(url) if url else None
    mark = PickMark(
        url=canonical_url(url or pick.url),
        note=pick.note,
        title=pick.title,
        section=pick.section,
        picked_at=pick.added_at,  # None: the first build that sees the pick dates it
    )
    if isinstance(page, Candidate):
        mark = replace(mark, url=page.url)
        outcome.candidates.append(
            page.with_(is_pick=True, pick_note=pick.note, section=pick.section or page.section)
        )
    elif page is not None or url is None:
        reason = page if page is not None else "not an http(s) URL or a file beside the picks file"
        http_url = safe_url(pick.url)
        if pick.title and http_url:
            warnings.append(f"pick {pick.url}: {reason} (kept with its own title)")
            outcome.candidates.append(_bare_pick(pick, http_url, ctx))
            mark = replace(mark, url=http_url)
        else:
            warnings.append(f"pick {pick.url}: {reason}")
            outcome.picks_complete = False
            return
    outcome.picks.append(mark)


def _bare_pick(pick: Pick, url: str, ctx: ParseContext) -> Candidate:
    return Candidate(
        url=url,
        title=pick.title or url,
        section=pick.section or ctx.section,
        date_flag="missing",
        source_url=ctx.source_url,
        is_pick=True,
        pick_note=pick.note,
    )
