"""Editor picks: the file (read, add, remove), gathering them, and their marks in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.build import build_edition
from digest.gather import GatherOptions, SourceSpec, gather
from digest.gather.picks import Pick, PicksError, add_pick, load_picks, parse_picks, remove_pick
from digest.store.models import Article
from tests.fakes.feed_server import FeedServer
from tests.gather_helpers import article, configured, rss

DAY = timedelta(days=1)
SECTIONS = ("Europe", "Asia")


def test_a_picks_file_is_read_with_every_field() -> None:
    body = b"""
[[picks]]
url = "https://x.example/a"
note = "Read this"
title = "Better title"
section = "Europe"
added_at = 2026-11-18T10:00:00Z
"""
    (pick,) = parse_picks(body, "picks.toml", SECTIONS).picks
    assert pick == Pick(
        "https://x.example/a",
        "Read this",
        "Better title",
        "Europe",
        datetime(2026, 11, 18, 10, tzinfo=UTC),
    )


def test_bad_entries_are_reported_by_number_and_the_good_ones_kept() -> None:
    body = b"""
[[picks]]
url = "javascript:alert(1)"
[[picks]]
url = "https://x.example/ok"
[[picks]]
url = "https://x.example/ok?utm_source=x"
[[picks]]
url = "https://x.example/b"
section = "Sport"
[[picks]]
note = "no url"
[[picks]]
url = "https://x.example/c"
colour = "red"
"""
    loaded = parse_picks(body, "picks.toml", SECTIONS)
    assert [p.url for p in loaded.picks] == ["https://x.example/ok"]
    assert loaded.problems == (
        "picks.toml: pick #1: url 'javascript:alert(1)' is not an http(s) URL",
        "picks.toml: pick #3 repeats pick #2 (https://x.example/ok?utm_source=x)",
        "picks.toml: pick #4: section 'Sport' is not one of Europe, Asia",
        "picks.toml: pick #5: url is missing",
        "picks.toml: pick #6: unknown key 'colour' (allowed: url, note, title, section, added_at)",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[picks]\nurl=", "picks.toml: invalid TOML"),
        (b"picks = 3", "'picks' must be an array of tables"),
        (b"[other]\nx = 1", "unknown top-level key 'other'"),
        (b"\xff\xfe", "picks.toml: not UTF-8"),
    ],
)
def test_a_broken_picks_file_is_one_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(PicksError, match=message):
        parse_picks(body, "picks.toml")


def test_add_update_and_remove_keep_comments_and_other_picks(tmp_path: Path) -> None:
    path = tmp_path / "picks.toml"
    path.write_text('# our picks\n[[picks]]\nurl = "https://x.example/keep"  # keep me\n')
    when = datetime(2026, 11, 18, 10, tzinfo=UTC)
    assert add_pick(path, Pick("https://x.example/new", note="Good", added_at=when))
    assert not add_pick(path, Pick("https://x.example/new/?utm_source=x", note="Better"))
    text = path.read_text()
    assert "# our picks" in text and "# keep me" in text
    picks = load_picks(path).picks
    assert [(p.url, p.note) for p in picks] == [
        ("https://x.example/keep", None),
        ("https://x.example/new", "Better"),
    ]
    assert picks[1].added_at == when
    assert remove_pick(path, "https://X.example/new")
    assert not remove_pick(path, "https://x.example/new")
    assert [p.url for p in load_picks(path).picks] == ["https://x.example/keep"]


def test_a_missing_picks_file_is_empty_and_add_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "picks.toml"
    assert load_picks(path).picks == ()
    add_pick(path, Pick("https://x.example/a"))
    assert [p.url for p in load_picks(path).picks] == ["https://x.example/a"]


def picks_file(tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "picks.toml"
    path.write_text("".join(f"[[picks]]\n{e}\n" for e in entries))
    return str(path)


def test_a_pick_already_gathered_is_marked_without_fetching(
    server: FeedServer, tmp_path: Path, now: datetime
) -> None:
    feed = server.add("/f", body=rss(("a", "Story the editors liked best", now - DAY, "s")))
    picks = picks_file(tmp_path, 'url = "https://desk.example/a?utm_source=nl"\nnote = "Must read"')
    result = gather([SourceSpec(url=feed), SourceSpec(url=picks, kind="picks")], now=now)
    (c,) = result.candidates
    assert c.is_pick and c.pick_note == "Must read"
    assert [m.url for m in result.picks] == ["https://desk.example/a"]
    assert result.picks_complete and result.reports[1].items == 1


def test_a_pick_not_gathered_is_fetched_as_a_page(
    server: FeedServer, tmp_path: Path, now: datetime
) -> None:
    url = server.add(
        "/p",
        body=article("p", "A page only the editors found", now - DAY, host=server.url("")),
        content_type="text/html",
    )
    picks = picks_file(tmp_path, f'url = "{url}"\nsection = "Asia"')
    result = gather(
        [SourceSpec(url=picks, kind="picks")], now=now, options=GatherOptions(sections=SECTIONS)
    )
    (c,) = result.candidates
    assert (c.title, c.section, c.is_pick) == ("A page only the editors found", "Asia", True)


def test_an_unreadable_pick_with_a_title_is_kept_and_one_without_is_reported(
    server: FeedServer, tmp_path: Path, now: datetime
) -> None:
    gone = server.add("/gone", status=404)
    also = server.add("/also-gone", status=404)
    picks = picks_file(
        tmp_path, f'url = "{gone}"\ntitle = "Editors\' own title"', f'url = "{also}"'
    )
    result = gather([SourceSpec(url=picks, kind="picks")], now=now)
    assert [c.title for c in result.candidates] == ["Editors' own title"]
    warnings = result.reports[0].warnings
    assert any("HTTP 404" in w and "kept with its own title" in w for w in warnings)
    assert any(w.startswith(f"pick {also}: HTTP 404") for w in warnings)
    assert not result.picks_complete  # so nothing is unmarked because of an outage


def test_picks_count_in_the_week_they_were_picked_with_title_and_section_overrides(
    factory: sessionmaker[Session],
    settings: Settings,
    server: FeedServer,
    tmp_path: Path,
    now: datetime,
) -> None:
    feed = server.add(
        "/f",
        body=rss(
            ("old", "An older story worth another look", now - 20 * DAY, "s"),
            ("new", "This week's ordinary story", now - DAY, "s"),
        ),
    )
    picks = picks_file(
        tmp_path,
        'url = "https://desk.example/old"\ntitle = "Worth another look"\nsection = "Asia"\n'
        f'note = "Still true"\nadded_at = {(now - DAY).isoformat()}',
    )
    config = configured(
        settings, [{"url": feed, "section": "Europe"}, {"url": picks, "kind": "picks"}]
    )
    report = build_edition(factory, config, now)
    chosen = {r.candidate.title: r.candidate for r in report.ranked}
    assert set(chosen) == {"Worth another look", "This week's ordinary story"}
    assert chosen["Worth another look"].section == "Asia" and chosen["Worth another look"].is_pick
    with factory() as session:
        row = session.scalar(select(Article).where(Article.url == "https://desk.example/old"))
        assert (
            row is not None and row.title == "An older story worth another look"
        )  # not overwritten
        assert row.picked_at == now - DAY


def test_removing_a_pick_unmarks_the_article_at_the_next_build(
    factory: sessionmaker[Session],
    settings: Settings,
    server: FeedServer,
    tmp_path: Path,
    now: datetime,
) -> None:
    feed = server.add("/f", body=rss(("a", "A story picked then unpicked", now - DAY, "s")))
    picks = picks_file(tmp_path, 'url = "https://desk.example/a"\nnote = "n"')
    config = configured(
        settings, [{"url": feed, "section": "Europe"}, {"url": picks, "kind": "picks"}]
    )
    assert build_edition(factory, config, now).ranked[0].candidate.is_pick
    remove_pick(Path(picks), "https://desk.example/a")
    rebuilt = build_edition(factory, config, now)
    assert not rebuilt.ranked[0].candidate.is_pick
    with factory() as session:
        row = session.scalar(select(Article))
        assert row is not None and (row.is_pick, row.pick_note, row.picked_at) == (
            False,
            None,
            None,
        )


def test_a_yaml_picks_file_reads_like_the_toml_one() -> None:
    body = b"""
picks:
  - url: https://x.example/a
    note: Read this
    section: Asia
    added_at: 2026-11-18T10:00:00Z
  - url: "ftp://x.example/b"
"""
    loaded = parse_picks(body, "picks.yaml", SECTIONS)
    assert loaded.picks == (
        Pick(
            "https://x.example/a", "Read this", None, "Asia", datetime(2026, 11, 18, 10, tzinfo=UTC)
        ),
    )
    assert loaded.problems == (
        "picks.yaml: pick #2: url 'ftp://x.example/b' is not an http(s) URL",
    )


def test_invalid_yaml_names_line_and_column() -> None:
    with pytest.raises(
        PicksError, match=r"picks.yml: invalid YAML at line 3, column 3: expected <block end>"
    ):
        parse_picks(b"picks:\n  - url: a\n  note: [unclosed\n", "picks.yml")


def test_yaml_picks_can_be_added_updated_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "picks.yaml"
    assert add_pick(
        path, Pick("https://x.example/a", note="One", added_at=datetime(2026, 11, 18, tzinfo=UTC))
    )
    assert not add_pick(path, Pick("https://x.example/a/", note="Two"))
    (pick,) = load_picks(path).picks
    assert (pick.note, pick.added_at) == ("Two", datetime(2026, 11, 18, tzinfo=UTC))
    assert remove_pick(path, "https://x.example/a") and load_picks(path).picks == ()


def test_a_pick_without_added_at_is_dated_by_the_first_build_that_sees_it(
    factory: sessionmaker[Session],
    settings: Settings,
    server: FeedServer,
    tmp_path: Path,
    now: datetime,
) -> None:
    feed = server.add("/f", body=rss(("a", "A story picked by hand-editing", now - DAY, "s")))
    picks = picks_file(tmp_path, 'url = "https://desk.example/a"')
    config = configured(
        settings, [{"url": feed, "section": "Europe"}, {"url": picks, "kind": "picks"}]
    )
    build_edition(factory, config, now)
    build_edition(factory, config, now + 2 * DAY)
    with factory() as session:
        row = session.scalar(select(Article))
        assert row is not None and row.is_pick and row.picked_at == now
