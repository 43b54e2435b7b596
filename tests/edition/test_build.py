"""Building an edition from the demo feeds: the week, the selection, and all-or-nothing writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.build import build_edition
from digest.edition.options import week_window
from digest.edition.queries import get_edition
from digest.edition.views import edition_view
from digest.errors import EditionStateError, EmptyWeekError, GatherError, NotFoundError
from digest.store.models import SENT, Article, Edition

NY = ZoneInfo("America/New_York")


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_week_is_seven_local_days_before_now() -> None:
    now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    start, end = week_window(now, NY, 7)
    assert start == datetime(2026, 11, 13, 9, 0, tzinfo=NY)
    assert end == now


def test_week_across_a_dst_change_keeps_local_wall_time() -> None:
    now = datetime(2026, 11, 6, 13, 0, tzinfo=UTC)  # 08:00 EST; clocks went back on Nov 1
    start, end = week_window(now, NY, 7)
    assert start == datetime(2026, 10, 30, 8, 0, tzinfo=NY)  # 08:00 EDT
    assert end - start == timedelta(days=7, hours=1)


def test_demo_week_builds_a_balanced_edition(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    sections = {r.candidate.section for r in report.ranked}
    assert 8 <= len(report.ranked) <= 15
    assert len(sections) >= 4
    start = now - timedelta(days=7)
    # An editor pick counts in the week it was picked, whenever it was published (issue 3).
    assert all(
        start <= r.candidate.published_at <= now for r in report.ranked if not r.candidate.is_pick
    )  # type: ignore[operator]
    assert all(r.candidate.published_at <= now for r in report.ranked)  # type: ignore[operator]


def test_build_persists_items_with_reasons(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    with factory() as session:
        edition = get_edition(session, report.edition.id)
        assert [i.position for i in edition.items] == list(range(1, len(report.ranked) + 1))
        assert all(item.reasons for item in edition.items)
        assert edition.subject == "The Weekly Round-up: November 20, 2026"


def test_rebuilding_a_draft_replaces_it_and_does_not_duplicate_articles(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    build_edition(factory, settings, now)
    with factory() as session:
        articles = count(session, Article)
    second = build_edition(factory, settings, now)
    assert second.replaced_draft
    with factory() as session:
        assert count(session, Edition) == 1
        assert count(session, Article) == articles


def test_a_sent_edition_cannot_be_rebuilt(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    with factory.begin() as session:
        session.get(Edition, report.edition.id).status = SENT  # type: ignore[union-attr]
    with pytest.raises(EditionStateError, match="already sent"):
        build_edition(factory, settings, now)


def test_a_thin_week_is_recorded_as_skipped(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(EmptyWeekError, match="edition 1 is recorded as skipped"):
        build_edition(factory, settings, long_ago)
    with factory() as session:
        edition = session.get(Edition, 1)
        assert edition is not None and edition.status == "skipped"
        assert edition.status_reason is not None and "min_items is 5" in edition.status_reason
        assert [(e.action, e.to_status) for e in edition.history] == [
            ("built", "draft"),
            ("skipped", "skipped"),
        ]


def test_empty_week_names_the_window_in_local_time(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    cutoff = datetime(2020, 1, 1, tzinfo=UTC)  # 2019-12-31 19:00 in New York
    with pytest.raises(EmptyWeekError) as info:
        build_edition(factory, settings, cutoff)
    assert "between 2019-12-24 19:00 and 2019-12-31 19:00 America/New_York" in str(info.value)


def test_one_broken_source_is_a_warning_not_a_failure(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    broken = settings.model_copy(
        update={
            "sources": [
                *settings.sources,
                settings.sources[0].model_copy(update={"url": "examples/feeds/missing.xml"}),
            ]
        }
    )
    report = build_edition(factory, broken, now)
    assert len(report.warnings) == 1
    assert "missing.xml" in report.warnings[0]


def test_no_readable_source_is_an_error_and_writes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    gone = settings.model_copy(
        update={
            "sources": [
                settings.sources[0].model_copy(update={"url": "examples/feeds/missing.xml"})
            ]
        }
    )
    with pytest.raises(GatherError, match=r"missing\.xml"):
        build_edition(factory, gone, now)
    with factory() as session:
        assert count(session, Edition) == 0


def test_unknown_edition_id_is_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError, match="no edition with id 42"):
        get_edition(session, 42)


def test_newest_edition_when_no_id_given(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    with factory() as session:
        assert get_edition(session, None).id == report.edition.id
        assert len(edition_view(get_edition(session, None)).items) == len(report.ranked)


def test_a_second_run_after_sending_finds_nothing_new(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    first = build_edition(factory, settings, now)
    with factory.begin() as session:
        session.get(Edition, first.edition.id).status = SENT  # type: ignore[union-attr]
    with pytest.raises(EmptyWeekError, match="only 0 article"):
        build_edition(factory, settings, now + timedelta(seconds=30))


def test_next_week_starts_where_the_sent_edition_ended(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    earlier = now - timedelta(days=3)
    first = build_edition(factory, settings, earlier)
    with factory.begin() as session:
        session.get(Edition, first.edition.id).status = SENT  # type: ignore[union-attr]
    settings = settings.model_copy(
        update={"newsletter": settings.newsletter.model_copy(update={"min_items": 1})}
    )
    second = build_edition(factory, settings, now)
    assert second.edition.window_start == earlier
    sent_urls = {r.candidate.url for r in first.ranked}
    assert not sent_urls & {r.candidate.url for r in second.ranked}
