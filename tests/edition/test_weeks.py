"""The week of an edition (issue 10), told as the issue tells it: the 20 November edition is
built, approved and sent, and nothing afterwards mails its week again; two builds of one week;
a thin week is skipped and the next one reaches back; a send to nobody does not use up the week;
a dry run answers what a real send would do now."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import Batch, RecipientStatus
from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition import build as build_module
from digest.edition import edits
from digest.edition.build import build_edition
from digest.edition.lifecycle import Override
from digest.errors import EditionStateError, EmptyAudienceError, EmptyWeekError
from digest.send.engine import dry_run, send_edition
from digest.send.status import cancel
from digest.store.db import transaction
from digest.store.models import (
    APPROVED,
    DRAFT,
    SENDING,
    SENT,
    SKIPPED,
    Delivery,
    Edition,
    EditionItem,
    EditionSend,
)
from tests.conftest import ROOT
from tests.send_helpers import add_subscribers, with_delivery
from tests.send_runtime import FakeTime

NY = ZoneInfo("America/New_York")
NOV_18 = datetime(2026, 11, 18, 9, 0, tzinfo=NY)
NOV_20 = datetime(2026, 11, 20, 9, 0, tzinfo=NY)


def _send(factory: sessionmaker[Session], settings: Settings, now: datetime, **kw: Any) -> Any:
    backend = kw.pop("backend", None) or MemoryBackend()
    report = send_edition(
        factory, settings, backend, now=now, runtime=FakeTime(now).runtime(), **kw
    )
    return report, backend


def _approve(factory: sessionmaker[Session], settings: Settings, edition_id: int) -> None:
    edits.change_status(factory, settings, edition_id, "approve", "ann", NOV_20)


def _editions(factory: sessionmaker[Session]) -> list[tuple[int, str]]:
    with factory() as session:
        return [(e.id, e.status) for e in session.scalars(select(Edition).order_by(Edition.id))]


def _articles_of(factory: sessionmaker[Session], edition_id: int) -> set[int]:
    with factory() as session:
        query = select(EditionItem.article_id).where(EditionItem.edition_id == edition_id)
        return set(session.scalars(query))


@pytest.fixture
def sent(factory: sessionmaker[Session], settings: Settings) -> int:
    """The 20 November edition, built, approved and sent to 15 subscribers."""
    add_subscribers(factory, 15, NOV_20)
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    _approve(factory, settings, edition_id)
    report, backend = _send(factory, settings, NOV_20 + timedelta(minutes=30))
    assert report.finished and len(backend.sent_to) == 15
    assert _editions(factory) == [(edition_id, SENT)]
    return edition_id


def test_a_build_for_a_week_overlapping_the_sent_one_is_refused(
    factory: sessionmaker[Session], settings: Settings, sent: int
) -> None:
    with pytest.raises(EditionStateError) as info:
        build_edition(factory, settings, NOV_18)
    assert info.value.exit_code == 6
    assert str(info.value) == (
        "the week ending 2026-11-18 09:00 America/New_York overlaps edition "
        f"{sent} (2026-11-13 09:00 to 2026-11-20 09:00), which is sent: no edition was built"
    )
    assert _editions(factory) == [(sent, SENT)]


def test_a_draft_of_an_overlapping_week_made_before_the_send_can_never_go(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    """The issue's double mailing: a draft for 18 November, made before the 20 November
    edition was sent, may not be approved, sent or rebuilt afterwards."""
    add_subscribers(factory, 15, NOV_20)
    early = build_edition(factory, settings, NOV_18).edition.id
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    _approve(factory, settings, edition_id)
    _send(factory, settings, NOV_20, edition_id=edition_id)

    with pytest.raises(EditionStateError, match=f"overlaps edition {edition_id}, which is sent"):
        _approve(factory, settings, early)
    with pytest.raises(EditionStateError, match=f"edition {early} is a draft, not approved"):
        _send(factory, settings, NOV_20, edition_id=early)
    with pytest.raises(EditionStateError, match="which is sent: no edition was built"):
        build_edition(factory, settings, NOV_18)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 15
    assert _editions(factory) == [(early, DRAFT), (edition_id, SENT)]


def _shifted_feeds(tmp_path: Path, days: int) -> list[Path]:
    """The demo feeds as they would read `days` later, had the newsroom re-dated every story
    (a feed that bumps its dates on every correction looks like this). `days` is a multiple of
    7, so the weekdays of RFC 822 dates stay right."""
    assert days % 7 == 0
    shift = timedelta(days=days)
    iso = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")
    rfc = re.compile(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}")

    def iso_later(m: re.Match[str]) -> str:
        moment = datetime.fromisoformat(m.group(0).replace("Z", "+00:00")) + shift
        return moment.isoformat()

    def rfc_later(m: re.Match[str]) -> str:
        return format_datetime(parsedate_to_datetime(m.group(0)) + shift)

    out = []
    for feed in sorted((ROOT / "examples" / "feeds").iterdir()):
        text = rfc.sub(rfc_later, iso.sub(iso_later, feed.read_text(encoding="utf-8")))
        path = tmp_path / f"later-{feed.name}"
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


def test_a_build_a_month_later_does_not_carry_the_sent_articles(
    factory: sessionmaker[Session], settings: Settings, sent: int, tmp_path: Path
) -> None:
    """Four weeks on, the feeds carry every story again with new dates: the 12 the readers
    already got stay out; the 6 they did not get make the new edition."""
    feeds = {p.name.removeprefix("later-"): p for p in _shifted_feeds(tmp_path, 28)}
    sources = [
        s.model_copy(update={"url": str(feeds[Path(s.url).name])})
        for s in settings.sources
        if s.kind == "feed"
    ]
    later = settings.model_copy(update={"sources": sources})
    report = build_edition(factory, later, NOV_20 + timedelta(days=28))
    chosen = _articles_of(factory, report.edition.id)
    already = _articles_of(factory, sent)
    assert report.edition.id != sent
    assert report.in_window == 18 - len(already)
    assert len(chosen) == report.in_window and chosen
    assert not chosen & already


def test_a_second_build_of_the_same_week_rebuilds_its_draft(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    first = build_edition(factory, settings, NOV_20, actor="ann")
    second = build_edition(factory, settings, NOV_20, actor="bob")
    assert not first.replaced_draft and second.replaced_draft
    assert second.edition.id == first.edition.id
    assert _editions(factory) == [(first.edition.id, DRAFT)]
    with factory() as session:
        edition = session.get(Edition, first.edition.id)
        assert edition is not None
        assert [(e.actor, e.action) for e in edition.history] == [
            ("ann", "built"),
            ("bob", "rebuilt"),
        ]


@pytest.fixture
def race(
    factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], None]:
    """Arm a race: the next build_edition, while it gathers, lets another build of the same
    week run to its end (as a second `digest build` in another terminal would)."""
    real_gather = build_module.gather

    def arm() -> None:
        def gather_while_another_build_finishes(*args: Any, **kw: Any) -> Any:
            monkeypatch.setattr(build_module, "gather", real_gather)
            build_edition(factory, settings, NOV_20, actor="the other build")
            return real_gather(*args, **kw)

        monkeypatch.setattr(build_module, "gather", gather_while_another_build_finishes)

    return arm


def _race_message() -> str:
    return (
        "another build or an edit of the week ending 2026-11-20 09:00 America/New_York finished "
        "while this build gathered; this one changed nothing (see `digest edition list`)"
    )


def test_two_builds_racing_on_a_fresh_database_one_wins_the_other_says_so(
    factory: sessionmaker[Session], settings: Settings, race: Callable[[], None]
) -> None:
    race()
    with pytest.raises(EditionStateError) as info:
        build_edition(factory, settings, NOV_20, actor="ann")
    assert info.value.exit_code == 6 and str(info.value) == _race_message()
    [(edition_id, status)] = _editions(factory)
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and status == DRAFT
        assert [(e.actor, e.action) for e in edition.history] == [("the other build", "built")]


def test_a_rebuild_racing_another_rebuild_changes_nothing(
    factory: sessionmaker[Session], settings: Settings, race: Callable[[], None]
) -> None:
    edition_id = build_edition(factory, settings, NOV_20, actor="ann").edition.id
    edits.set_text(factory, settings, edition_id, "subject", "Ann's subject", "ann", NOV_20)
    race()
    with pytest.raises(EditionStateError, match=re.escape(_race_message())):
        build_edition(factory, settings, NOV_20, actor="bob")
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None and edition.subject == "Ann's subject"
        assert [e.actor for e in edition.history] == ["ann", "ann", "the other build"]


def test_a_thin_week_is_skipped_and_the_next_week_reaches_back_for_its_articles(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    """On 13 November four of five feeds are down: three articles, a thin week. It is recorded
    as skipped, and the 20 November edition covers both weeks (2 x window_days)."""
    nov_13 = NOV_20 - timedelta(days=7)
    broken = settings.model_copy(
        update={
            "sources": [
                s
                if s.url.endswith("asia.json") or s.kind != "feed"
                else s.model_copy(update={"url": f"examples/feeds/down-{n}.xml"})
                for n, s in enumerate(settings.sources)
            ]
        }
    )
    with pytest.raises(EmptyWeekError) as info:
        build_edition(factory, broken, nov_13)
    assert info.value.exit_code == 5
    assert sum(w.startswith("source failed: ") for w in info.value.warnings) == 4
    [(skipped, status)] = _editions(factory)
    assert status == SKIPPED

    report = build_edition(factory, settings, NOV_20)
    assert report.edition.window_start == datetime(2026, 11, 6, 9, 0, tzinfo=NY)
    assert report.in_window > 18  # the plain week holds 18 articles
    picked = {r.candidate.published_at for r in report.ranked}
    assert any(p is not None and p < nov_13 for p in picked)
    assert _editions(factory) == [(skipped, SKIPPED), (report.edition.id, DRAFT)]


def test_a_week_skipped_by_hand_also_leaves_its_articles_for_the_next(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    nov_13 = NOV_20 - timedelta(days=7)
    first = build_edition(factory, settings, nov_13).edition.id
    edits.change_status(factory, settings, first, "skip", "ann", nov_13, reason="office closed")
    report = build_edition(factory, settings, NOV_20)
    assert report.edition.window_start == datetime(2026, 11, 6, 9, 0, tzinfo=NY)


def test_the_week_after_a_sent_one_starts_at_its_cutoff(
    factory: sessionmaker[Session], settings: Settings, sent: int
) -> None:
    """Nothing falls between two editions: the next week starts where the sent one ended
    (here it is empty, the demo feeds end on 20 November, and recorded as skipped)."""
    with pytest.raises(EmptyWeekError):
        build_edition(factory, settings, NOV_20 + timedelta(days=7))
    with factory() as session:
        later = session.scalars(select(Edition).where(Edition.id != sent)).one()
        assert later.window_start == NOV_20
        assert later.status == SKIPPED and not later.items


def test_a_send_to_nobody_does_not_start_and_the_week_can_still_be_sent(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    _approve(factory, settings, edition_id)
    with pytest.raises(EmptyAudienceError, match="has no recipients") as info:
        _send(factory, settings, NOV_20, edition_id=edition_id)
    assert info.value.exit_code == 1
    assert "it stays approved" in str(info.value)
    assert _editions(factory) == [(edition_id, APPROVED)]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalar(select(func.count()).select_from(EditionSend)) == 0

    add_subscribers(factory, 15, NOV_20)
    report, backend = _send(factory, settings, NOV_20 + timedelta(hours=1), edition_id=edition_id)
    assert report.finished and len(backend.sent_to) == 15
    assert _editions(factory) == [(edition_id, SENT)]


def test_a_late_send_is_refused_unless_forced_and_the_override_is_recorded(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    add_subscribers(factory, 3, NOV_20)
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    _approve(factory, settings, edition_id)
    monday = NOV_20 + timedelta(days=3)
    with pytest.raises(EditionStateError, match="send window closed at 2026-11-21 09:00 EST"):
        _send(factory, settings, monday, edition_id=edition_id)
    assert _editions(factory) == [(edition_id, APPROVED)]

    report, _ = _send(
        factory,
        settings,
        monday,
        edition_id=edition_id,
        actor="ann",
        force=Override("the ESP was down all weekend"),
    )
    assert report.finished
    with factory() as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        started = next(e for e in edition.history if e.action == "send started")
        assert (started.actor, started.from_status, started.to_status) == ("ann", APPROVED, SENDING)
        assert started.forced and started.reason == "the ESP was down all weekend"
        assert started.detail == "3 recipients, after the send window; preflight passed (1 variant)"
        assert edition.history[-1].action == "sent" and edition.status == SENT


def test_a_dry_run_of_a_sent_edition_is_refused_like_a_send(
    factory: sessionmaker[Session], settings: Settings, sent: int
) -> None:
    with pytest.raises(EditionStateError, match=f"edition {sent} was already sent") as info:
        dry_run(factory, settings, sent, NOV_20 + timedelta(hours=1))
    assert info.value.exit_code == 6


def test_a_dry_run_of_a_draft_names_the_command_that_approves_it(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    with pytest.raises(EditionStateError, match=f"`digest edition approve {edition_id}`"):
        dry_run(factory, settings, edition_id, NOV_20)


def test_a_dry_run_of_a_half_finished_send_counts_only_who_is_left(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    add_subscribers(factory, 9, NOV_20)
    edition_id = build_edition(factory, settings, NOV_20).edition.id
    _approve(factory, settings, edition_id)

    def cancel_after_the_first_batch(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            cancel(session, edition_id, NOV_20)
        return [RecipientStatus(r.delivery_id, "accepted", "m") for r in batch.recipients]

    small = with_delivery(settings, batch_size=3, concurrency=1)
    report, backend = _send(
        factory, small, NOV_20, backend=MemoryBackend(cancel_after_the_first_batch)
    )
    assert len(backend.sent_to) == 3 and not report.finished

    preview = dry_run(factory, settings, edition_id, NOV_20 + timedelta(hours=1))
    assert preview.dry_run and preview.resumed
    assert preview.planned == 6 and sum(preview.variants.values()) == 6
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 9
