"""Gathering end to end: concurrency, failures, conditional GET, the database, the week."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings, SourceSettings
from digest.edition.build import build_edition
from digest.gather import (
    Fetched,
    FetchError,
    GatherOptions,
    Limits,
    SourceSpec,
    Validators,
    gather,
    gather_async,
)
from digest.store.models import Article, Source
from subscribers.models import Base
from tests.fakes.feed_server import FeedServer
from tests.gather_helpers import article, configured, listing, rss, run_on_virtual_clock

DAY = timedelta(days=1)


def articles(factory: sessionmaker[Session]) -> list[Article]:
    with factory() as session:
        return list(session.scalars(select(Article).order_by(Article.id)))


def test_fetches_stay_within_the_concurrency_bound(now: datetime) -> None:
    in_flight, peak = 0, 0

    async def fetcher(
        url: str, *, validators: Validators = Validators(), timeout_s: float | None = None
    ) -> Fetched:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return Fetched(
            url=url, body=rss((url[-2:], f"Story {url[-2:]} for the bound test", now, "s"))
        )

    specs = [SourceSpec(url=f"https://f.example/{i:02d}") for i in range(12)]
    result = gather(
        specs, now=now, fetcher=fetcher, options=GatherOptions(limits=Limits(concurrency=3))
    )
    assert peak == 3 and len(result.candidates) == 12


def test_every_failing_source_is_reported_with_its_url_and_reason(
    server: FeedServer, now: datetime
) -> None:
    good = server.add("/good", body=rss(("a", "A perfectly good story here", now, "fine")))
    cases = {
        server.add("/500", body=b"oops", status=500): ("http", "HTTP 500 Internal Server Error"),
        server.add("/slow", body=b"late", delay_s=1.5): ("timeout", "timed out after 0.3 s"),
        server.add("/big", body=b"x" * 5000): ("too-large", "too large: 5000 bytes"),
        server.add("/bad", body=b'<?xml version="1.0"?>\n<rss>\n<<<'): ("parse", "line 3"),
        server.add("/png", body=b"\x89PNG\r\n\x00\x00"): ("undecodable", "binary data"),
    }
    # Only the slow source gets a short timeout: it cannot answer before 1.5 s, so it always
    # times out, while the others keep the default 15 s, however busy the machine is.
    specs = [
        SourceSpec(url=good),
        *(SourceSpec(url=u, timeout_s=0.3 if u.endswith("/slow") else None) for u in cases),
    ]
    result = gather(specs, now=now, options=GatherOptions(limits=Limits(max_bytes=4096)))
    assert result.reports[0].ok and result.reports[0].items == 1
    for report in result.reports[1:]:
        kind, message = cases[report.url]
        assert not report.ok and report.error_kind == kind and message in (report.error or "")
    assert [c.title for c in result.candidates] == ["A perfectly good story here"]


def demo_like(settings: Settings, server: FeedServer, now: datetime) -> Settings:
    server.add(
        "/europe",
        body=rss(("eu/1", "Harbour strike closes the port of Antwerp", now - DAY, "Short.")),
        etag='"e1"',
    )
    server.add(
        "/diplomacy",
        body=rss(
            (
                "dip/1",
                "Harbour strike closes the port of Antwerp today",
                now - DAY,
                "A longer excerpt from diplomacy.",
            )
        ),
        last_modified="Wed, 18 Nov 2026 10:00:00 GMT",
    )
    return configured(
        settings,
        [
            {"url": server.url("/europe"), "section": "Europe"},
            {"url": server.url("/diplomacy"), "section": "Diplomacy"},
        ],
    )


def test_conditional_get_stores_validators_and_a_304_still_builds_the_week(
    factory: sessionmaker[Session], settings: Settings, server: FeedServer, now: datetime
) -> None:
    config = demo_like(settings, server, now)
    build_edition(factory, config, now)
    with factory() as session:
        stored = {
            s.url.rsplit("/", 1)[1]: (s.etag, s.last_modified)
            for s in session.scalars(select(Source))
        }
    assert stored == {
        "europe": ('"e1"', None),
        "diplomacy": (None, "Wed, 18 Nov 2026 10:00:00 GMT"),
    }
    second = build_edition(factory, config, now)
    assert [r.status for r in second.sources] == ["not-modified", "not-modified"]
    assert server.seen("/europe")[1].headers["if-none-match"] == '"e1"'
    assert len(second.ranked) == 1  # the week comes from the database


def test_near_duplicates_across_sources_become_one_article_with_the_richest_fields(
    factory: sessionmaker[Session], settings: Settings, server: FeedServer, now: datetime
) -> None:
    report = build_edition(factory, demo_like(settings, server, now), now)
    (row,) = articles(factory)
    assert row.section == "Europe" and row.summary == "A longer excerpt from diplomacy."
    assert report.ranked[0].candidate.title == "Harbour strike closes the port of Antwerp"


def test_re_runs_are_idempotent_and_a_changed_article_is_updated_not_duplicated(
    factory: sessionmaker[Session], settings: Settings, server: FeedServer, now: datetime
) -> None:
    url = server.add(
        "/f", body=rss(("x", "Bridge reopens after repairs", now - DAY, "First version."))
    )
    config = configured(settings, [{"url": url, "section": "Europe"}], conditional_get=False)
    build_edition(factory, config, now)
    build_edition(factory, config, now)
    (first,) = articles(factory)
    server.add(
        "/f", body=rss(("x", "Bridge reopens after repairs", now - DAY, "Corrected version."))
    )
    report = build_edition(factory, config, now + timedelta(hours=1))
    (row,) = articles(factory)
    assert row.id == first.id and row.summary == "Corrected version."
    assert row.first_seen_at == now and row.updated_at == now + timedelta(hours=1)
    assert (report.stored.added, report.stored.updated) == (0, 1)


def test_undated_items_count_from_first_seen_and_future_items_wait_for_their_date(
    factory: sessionmaker[Session], settings: Settings, server: FeedServer, now: datetime
) -> None:
    url = server.add(
        "/f",
        body=rss(
            ("undated", "An undated story about the ferry", None, "u"),
            ("future", "A story dated next month by mistake", now + 30 * DAY, "f"),
            ("old", "A story from last month about trains", now - 30 * DAY, "o"),
        ),
    )
    report = build_edition(factory, configured(settings, [{"url": url, "section": "Europe"}]), now)
    assert [r.candidate.title for r in report.ranked] == ["An undated story about the ferry"]
    flags = {a.title: a.date_flag for a in articles(factory)}
    assert flags["An undated story about the ferry"] == "missing"
    assert flags["A story dated next month by mistake"] == "future"


def test_one_source_failing_is_a_warning_and_all_failing_is_an_error(
    factory: sessionmaker[Session], settings: Settings, server: FeedServer, now: datetime
) -> None:
    good = server.add("/ok", body=rss(("a", "The only working source today", now - DAY, "s")))
    bad = server.add("/gone", status=404)
    sources = [{"url": good, "section": "Asia"}, {"url": bad, "section": "Asia"}]
    report = build_edition(factory, configured(settings, sources), now)
    assert report.warnings == [f"source failed: {bad}: HTTP 404 Not Found"]
    from digest.errors import GatherError

    with pytest.raises(GatherError, match="HTTP 404"):
        build_edition(factory, configured(settings, sources[1:]), now)


def test_a_listing_source_reads_its_article_pages(server: FeedServer, now: datetime) -> None:
    server.add(
        "/world/one",
        body=article("world/one", "Port deal signed in Rotterdam", now - DAY, host=server.url("")),
        content_type="text/html",
    )
    server.add("/world/two", status=500)
    url = server.add(
        "/world/",
        body=listing("/world/one", "/world/two", "/tag/x", "https://other.example/x"),
        content_type="text/html",
    )
    result = gather(
        [SourceSpec(url=url, kind="listing")], now=now, options=GatherOptions(sections=("Europe",))
    )
    (report,) = result.reports
    assert report.ok and report.items == 1 and report.pages == 2
    assert any("/world/two: HTTP 500" in w for w in report.warnings)
    (c,) = result.candidates
    assert (c.title, c.section, c.url) == (
        "Port deal signed in Rotterdam",
        "Europe",
        server.url("/world/one"),
    )


def test_a_sitemap_index_leads_to_recent_pages_only(server: FeedServer, now: datetime) -> None:
    host = server.url("")
    server.add(
        "/news/new",
        body=article("news/new", "Fresh story from the news sitemap", now - DAY, host=host),
        content_type="text/html",
    )
    server.add(
        "/news/old",
        body=article("news/old", "Old story nobody should fetch", now - 90 * DAY, host=host),
        content_type="text/html",
    )
    server.add(
        "/sitemap-1.xml",
        content_type="application/xml",
        body=(
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{host}/news/new</loc><lastmod>{(now - DAY).date()}</lastmod></url>"
            f"<url><loc>{host}/news/old</loc><lastmod>{(now - 90 * DAY).date()}</lastmod></url>"
            "</urlset>"
        ).encode(),
    )
    index = server.add(
        "/sitemap.xml",
        content_type="application/xml",
        body=f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>{host}/sitemap-1.xml</loc></sitemap></sitemapindex>'.encode(),
    )
    result = gather(
        [SourceSpec(url=index, kind="sitemap")], now=now, options=GatherOptions(since=now - 7 * DAY)
    )
    assert [c.title for c in result.candidates] == ["Fresh story from the news sitemap"]
    assert server.seen("/news/old") == []


def test_a_page_source_is_one_article(server: FeedServer, now: datetime) -> None:
    url = server.add(
        "/one",
        body=article("one", "A single page source story", now - DAY, host=server.url("")),
        content_type="text/html",
    )
    (c,) = gather([SourceSpec(url=url, kind="page", section="Asia")], now=now).candidates
    assert c.section == "Asia" and c.summary == "About a single page source story."


def test_a_timeout_while_waiting_for_a_slot_is_not_counted(now: datetime) -> None:
    """One slot, a 1.5 s timeout, fetches of 1 s: the fourth waits 3 s for the slot and is still
    in time; the fifth takes 2 s once it has the slot, and that is what times out. On a virtual
    clock (tests/gather_helpers.py), so how busy the machine is cannot change the outcome."""
    started: dict[str, float] = {}

    async def fetcher(
        url: str, *, validators: Validators = Validators(), timeout_s: float | None = None
    ) -> Fetched:
        started[url] = asyncio.get_running_loop().time()
        await asyncio.sleep(2.0 if url.endswith("/slow") else 1.0)
        return Fetched(url=url, body=rss(("s", f"Story at {url}", now, "s")))

    urls = [*(f"https://f.example/{i}" for i in range(4)), "https://f.example/slow"]
    specs = [SourceSpec(url=u, timeout_s=1.5) for u in urls]
    options = GatherOptions(limits=Limits(concurrency=1))
    result = run_on_virtual_clock(gather_async(specs, now=now, fetcher=fetcher, options=options))
    assert sorted(started.values()) == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])
    assert [(r.url, r.ok) for r in result.reports] == [(u, not u.endswith("/slow")) for u in urls]
    assert result.reports[-1].error == "timed out after 1.5 s"


def test_a_fetcher_error_inside_a_running_event_loop_still_works(now: datetime) -> None:
    async def fetcher(
        url: str, *, validators: Validators = Validators(), timeout_s: float | None = None
    ) -> Fetched:
        raise FetchError("HTTP 503 Service Unavailable", "http")

    async def from_a_loop() -> str | None:
        return (
            gather([SourceSpec(url="https://x.example/f")], now=now, fetcher=fetcher)
            .reports[0]
            .error
        )

    assert asyncio.run(from_a_loop()) == "HTTP 503 Service Unavailable"


def test_source_options_must_fit_the_kind() -> None:
    with pytest.raises(ValidationError, match="link_pattern applies only to kind = 'listing'"):
        SourceSettings(url="f.xml", kind="feed", link_pattern="/x/")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        SourceSettings(url="l.html", kind="listing", link_pattern="(")
    with pytest.raises(ValidationError, match="max_pages applies to sitemap, listing and picks"):
        SourceSettings(url="p.html", kind="page", max_pages=3)


def test_the_gather_migration_matches_the_article_model(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diff if "articles" in repr(d)]
    assert mine == []
    with engine.connect() as conn:
        columns = {c[1] for c in conn.exec_driver_sql("PRAGMA table_info(articles)")}
    assert {"picked_at", "pick_title", "pick_section"} <= columns


def test_gather_counts_articles_in_the_database(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    build_edition(factory, settings, now)
    with factory() as session:
        assert (
            session.scalar(select(func.count()).select_from(Article)) == 49
        )  # 50 minus 1 merged copy


def test_the_offline_pages_example_reads_a_listing_a_sitemap_and_a_page(now: datetime) -> None:
    from digest.config import load_settings
    from digest.edition.options import gather_options, source_specs
    from tests.conftest import EXAMPLES

    settings = load_settings(EXAMPLES / "pages" / "digest.toml")
    result = gather(
        source_specs(settings), now=now, options=gather_options(settings, now - 7 * DAY)
    )
    assert [(r.ok, r.items, r.warnings) for r in result.reports] == [
        (True, 3, ()),
        (True, 2, ()),
        (True, 1, ()),
    ]
    assert len(result.candidates) == 3  # six copies of three articles
    assert all(
        c.url.startswith("https://meridianreview.example/analysis/") for c in result.candidates
    )
    assert {c.author for c in result.candidates} == {"Ines Duarte", "Lukas Brandt", "Karim Haddad"}


def test_an_unknown_kind_is_a_reported_failure_not_a_crash(tmp_path, now: datetime) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.xml"
    path.write_bytes(rss(("a", "Some story in an odd source", now, "s")))
    (report,) = gather([SourceSpec(url=str(path), kind="podcast")], now=now).reports
    assert (
        not report.ok
        and report.error == "unknown source kind 'podcast' (feed, sitemap, listing, page)"
    )


def test_parsing_never_holds_up_the_fetches_of_other_sources(
    now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first feed's parse waits until the second feed has been fetched: on the event loop
    it would wait forever (the second fetch could not run), in the parse thread it does not."""
    import threading

    from digest.gather import sources

    second_fetched = threading.Event()
    threads: set[str] = set()
    real = sources.parse_feed

    def slow_parse(body, ctx, content_type):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        if ctx.source_url.endswith("/first"):
            assert second_fetched.wait(30), "the second fetch never ran while the first parsed"
        return real(body, ctx, content_type)

    async def fetcher(
        url: str, *, validators: Validators = Validators(), timeout_s: float | None = None
    ) -> Fetched:
        if url.endswith("/second"):
            await asyncio.sleep(0.05)  # after the first parse has begun
            second_fetched.set()
        return Fetched(url=url, body=rss((url[-6:], f"A story from {url[-6:]}", now, "s")))

    monkeypatch.setattr(sources, "parse_feed", slow_parse)
    specs = [SourceSpec(url="https://f.example/first"), SourceSpec(url="https://f.example/second")]
    switch = sys.getswitchinterval()
    result = gather(specs, now=now, fetcher=fetcher)
    assert all(r.ok for r in result.reports) and len(result.candidates) == 2
    assert len(threads) == 1 and threads.pop().startswith("digest-parse")  # one parse thread
    assert sys.getswitchinterval() == switch  # the interpreter's setting comes back
