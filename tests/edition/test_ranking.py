"""The ranking inside a build: popularity from a CSV, clicks our editions recorded, the staff's
pins, drops and lead decided by rank(), and items carrying the reasons `digest rank` prints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import RankSettings, Settings
from digest.edition import edits
from digest.edition.build import build_edition, rank_cutoff
from digest.edition.signals import read_popularity
from digest.errors import ConfigError
from digest.store.models import Edition, EditionItem, LinkClick


def with_rank(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update={"rank": RankSettings(**values)})  # type: ignore[arg-type]


def items(session: Session, edition_id: int) -> list[EditionItem]:
    query = select(EditionItem).where(EditionItem.edition_id == edition_id)
    return list(session.scalars(query.order_by(EditionItem.position)))


def test_popularity_csv_reads_header_blank_lines_and_adds_up(tmp_path: Path) -> None:
    path = tmp_path / "views.csv"
    path.write_text(
        "url,score\nhttps://a.example/x,10\n\nhttp://a.example/x/,5.5\nhttps://b.example/y,0\n"
    )
    assert read_popularity(path) == {"a.example/x": 15.5, "b.example/y": 0.0}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("https://a.example/x,lots", "views.csv:3: score 'lots' is not a number"),
        ("https://a.example/x,-3", "views.csv:3: score '-3' must be a number >= 0"),
        ("https://a.example/x", "views.csv:3: expected 2 columns (url,score), found 1"),
        ("a.example/x,3", "views.csv:3: 'a.example/x' is not an http(s) URL"),
    ],
)
def test_a_bad_popularity_row_names_the_file_and_line(
    tmp_path: Path, row: str, message: str
) -> None:
    path = tmp_path / "views.csv"
    path.write_text(f"url,score\nhttps://ok.example/1,4\n{row}\n")
    with pytest.raises(ConfigError) as info:
        read_popularity(path)
    assert str(info.value).endswith(message)
    assert "\n" not in str(info.value)


def test_a_missing_popularity_file_is_a_config_error(
    factory: sessionmaker[Session], settings: Settings, now: datetime, tmp_path: Path
) -> None:
    settings = with_rank(settings, popularity_file=str(tmp_path / "gone.csv"))
    with factory() as session, pytest.raises(ConfigError) as info:
        rank_cutoff(session, settings, now)
    assert str(info.value) == f"[rank] popularity_file: {tmp_path / 'gone.csv'}: no such file"
    assert info.value.exit_code == 2


def test_popularity_lifts_an_article_into_the_edition(
    factory: sessionmaker[Session], settings: Settings, now: datetime, tmp_path: Path
) -> None:
    report = build_edition(factory, settings, now)
    with factory() as session:
        left_out = [
            r for r in rank_cutoff(session, settings, now).result.candidates if not r.chosen
        ]
    assert left_out
    underdog = left_out[-1].candidate
    path = tmp_path / "views.csv"
    path.write_text(f"url,score\n{underdog.url},9000\n")
    popular = with_rank(settings, popularity_file=str(path), popularity_weight=5.0)
    rebuilt = build_edition(factory, popular, now)
    chosen = {r.candidate.url: r for r in rebuilt.ranked}
    assert underdog.url in chosen and underdog.url not in {r.candidate.url for r in report.ranked}
    assert "popularity 1.00 x weight 5: +5.00" in chosen[underdog.url].reasons


def test_clicks_from_past_editions_count(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    with factory() as session:
        last = [r for r in rank_cutoff(session, settings, now).result.candidates][-1].candidate
        session.add(LinkClick(edition_id=report.edition.id, url=last.url, clicks=7))
        session.commit()
        week = rank_cutoff(session, with_rank(settings, clicks_weight=0.5), now)
    outcome = next(r for r in week.result.candidates if r.candidate.url == last.url)
    assert "clicks in past editions 1.00 x weight 0.5: +0.50" in outcome.reasons


def test_pins_drops_and_lead_are_decided_by_the_ranking_and_items_carry_its_reasons(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    report = build_edition(factory, settings, now)
    edition_id = report.edition.id
    with factory() as session:
        outcomes = rank_cutoff(session, settings, now).result.candidates
    outsider = next(r.candidate for r in reversed(outcomes) if not r.chosen)
    best = outcomes[0].candidate
    edits.pin(factory, settings, edition_id, outsider.url, "ann", now, lead=True)
    edits.drop(factory, settings, edition_id, best.url, "bob", now)
    with factory() as session:
        stored = items(session, edition_id)
        week = rank_cutoff(session, settings, now)
        edition = session.get(Edition, edition_id)
        assert edition is not None and len(stored) <= settings.newsletter.max_items
    assert stored[0].url == outsider.url and stored[0].pinned
    assert stored[0].reasons[-2:] == ["pinned by ann", "lead story: chosen by ann"]
    assert best.url not in {i.url for i in stored}
    by_url = {r.candidate.url: r for r in week.result.candidates}
    assert by_url[best.url].reasons[-1] == "dropped by bob"
    for item in stored:
        assert item.reasons == list(by_url[item.url].reasons)
    assert not any(i.pinned for i in stored if not any(r.startswith("pinned") for r in i.reasons))


def test_rank_writes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    with factory() as session:
        week = rank_cutoff(session, settings, now)
        assert week.result.candidates == ()
        assert session.scalar(select(Edition.id)) is None
