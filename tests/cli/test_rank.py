"""`digest rank`: every candidate of the week, chosen or not, with its score and reasons."""

from __future__ import annotations

import json


def test_rank_table_shows_every_candidate_and_why(cli) -> None:
    assert cli("build", "--now", "2026-11-20T09:00")[0] == 0
    code, out, err = cli("rank", "--now", "2026-11-20T09:00")
    assert code == 0, err
    assert "The week ending 2026-11-20 09:00" in out
    assert "lead story: the highest score" in out
    assert "below the cut: rank" in out
    assert "12 of 18 candidates chosen." in out


def test_rank_json_is_deterministic_and_matches_the_edition(cli) -> None:
    assert cli("build", "--now", "2026-11-20T09:00")[0] == 0
    code, out, _ = cli("rank", "--now", "2026-11-20T09:00", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {"id", "url", "title", "section", "score", "chosen", "reasons"} <= set(rows[0])
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(isinstance(r["chosen"], bool) and r["reasons"] for r in rows)
    assert sum(r["lead"] for r in rows) == 1
    assert cli("rank", "--now", "2026-11-20T09:00", "--json")[1] == out
    shown = json.loads(cli("edition", "show", "1", "--json")[1])
    chosen = {r["url"]: r["reasons"] for r in rows if r["chosen"]}
    assert {i["url"]: i["reasons"] for i in shown["items"]} == chosen


def test_rank_writes_nothing(cli) -> None:
    code, out, _ = cli("rank", "--now", "2026-11-20T09:00", "--json")
    assert code == 0 and json.loads(out) == []
    assert "No editions yet" in cli("edition", "list")[1]


def test_rank_bad_now_exits_2_with_one_line(cli) -> None:
    code, _, err = cli("rank", "--now", "next friday")
    assert code == 2
    assert err.strip() == (
        "error: --now 'next friday' is not ISO-8601 (e.g. 2026-11-20T09:00 or 2026-11-20T14:00Z)"
    )


def test_a_bad_popularity_row_exits_2_naming_file_and_line(cli, monkeypatch, tmp_path) -> None:
    views = tmp_path / "views.csv"
    views.write_text("url,score\nhttps://a.example/1,12\nhttps://a.example/2,many\n")
    monkeypatch.setenv("DIGEST_RANK__POPULARITY_FILE", str(views))
    code, _, err = cli("rank", "--now", "2026-11-20T09:00")
    assert code == 2
    assert err.strip() == f"error: {views}:3: score 'many' is not a number"


def test_a_missing_popularity_file_exits_2(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DIGEST_RANK__POPULARITY_FILE", str(tmp_path / "gone.csv"))
    assert cli("build", "--now", "2026-11-20T09:00")[0] == 2
    code, _, err = cli("rank", "--now", "2026-11-20T09:00")
    assert code == 2
    assert err.strip() == f"error: [rank] popularity_file: {tmp_path / 'gone.csv'}: no such file"


def test_a_week_with_no_stored_articles_says_so(cli) -> None:
    code, out, _ = cli("rank", "--now", "2020-01-01T09:00")
    assert code == 0
    assert "No stored articles in the week ending 2020-01-01 09:00 America/New_York" in out
