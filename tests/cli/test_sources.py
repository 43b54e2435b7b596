"""`digest sources check`, `digest articles list` and `digest picks ...`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

MINIMAL = """
[publication]
name = "Desk"
url = "https://desk.example"
postal_address = "1 Road, Town"
timezone = "America/New_York"

[newsletter]
title = "Weekly"
from_email = "news@desk.example"
sections = ["Europe", "Asia"]

{sources}
"""


def config(tmp_path: Path, *sources: tuple[str, str]) -> str:
    blocks = "\n".join(f'[[sources]]\nurl = "{url}"\nkind = "{kind}"\n' for url, kind in sources)
    path = tmp_path / "digest.toml"
    path.write_text(MINIMAL.format(sources=blocks))
    return str(path)


def test_sources_check_shows_every_source_and_exits_0(cli) -> None:
    code, out, err = cli("sources", "check", "--now", "2026-11-20T09:00")
    assert code == 0, err
    assert out.count(" ok ") == 6 and "middle-east.xml" in out and "Fri 20 Nov 07:55" in out
    assert "Editor picks" in out


def test_sources_check_exits_1_when_some_fail_and_names_the_reason(cli, tmp_path: Path) -> None:
    path = config(
        tmp_path, (str(EXAMPLES / "feeds/europe.xml"), "feed"), (str(tmp_path / "gone.xml"), "feed")
    )
    code, out, err = cli("--config", path, "sources", "check")
    assert code == 1
    assert "file not found" in out and "1 of 2 sources failed" in err


def test_sources_check_exits_4_when_none_work(cli, tmp_path: Path) -> None:
    path = config(tmp_path, (str(tmp_path / "gone.xml"), "feed"))
    code, _, err = cli("--config", path, "sources", "check")
    assert code == 4 and "none of the 1 sources could be read" in err and "Traceback" not in err


def test_sources_check_json_has_status_items_and_time(cli) -> None:
    code, out, _ = cli("sources", "check", "--json")
    reports = json.loads(out)
    assert code == 0 and len(reports) == 6
    assert {r["status"] for r in reports} == {"ok"}
    assert [r["items"] for r in reports] == [10, 10, 10, 10, 10, 2]  # two editor picks
    assert all(isinstance(r["elapsed_s"], float) for r in reports)


def test_articles_list_shows_the_week_after_a_build(cli) -> None:
    assert cli("build", "--now", "2026-11-20T09:00")[0] == 0
    code, out, _ = cli("articles", "list", "--week", "2026-11-20T09:00")
    assert code == 0
    assert "18 articles between 2026-11-13 09:00 and 2026-11-20 09:00 America/New_York" in out
    assert "(2 editor picks, ★)" in out  # 17 of the week and a pick of an older article
    code, out, _ = cli("articles", "list", "--week", "2026-11-19", "--json")
    rows = json.loads(out)
    assert code == 0 and all(r["url"].startswith("https://meridianreview.example/") for r in rows)
    code, out, _ = cli("articles", "list", "--all")
    assert "49 articles in the database" in out


def test_articles_list_rejects_a_malformed_week(cli) -> None:
    code, _, err = cli("articles", "list", "--week", "last tuesday")
    assert code == 2 and "--week 'last tuesday': expected 2026-W47" in err


def test_picks_add_list_and_remove(cli, tmp_path: Path) -> None:
    path = str(tmp_path / "picks.toml")
    url = "https://meridianreview.example/europe/a-story/"
    code, out, _ = cli(
        "picks",
        "add",
        url,
        "--note",
        "Read it",
        "--section",
        "Europe",
        "--title",
        "Better",
        "--file",
        path,
        "--now",
        "2026-11-18T10:00",
    )
    assert code == 0 and "Added pick" in out
    code, out, _ = cli("picks", "list", "--file", path, "--json")
    (pick,) = json.loads(out)
    assert pick["note"] == "Read it" and pick["section"] == "Europe" and pick["title"] == "Better"
    assert pick["added_at"] == "2026-11-18T15:00:00+00:00"
    assert cli("picks", "add", url, "--note", "Changed", "--file", path)[1].startswith(
        "Updated pick"
    )
    assert cli("picks", "remove", url, "--file", path)[0] == 0
    code, _, err = cli("picks", "remove", url, "--file", path)
    assert code == 3 and "no pick with URL" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["javascript:alert(1)"], "is not an http(s) URL"),
        (["example.com/story"], "has no scheme: write https://example.com/story"),
        (["https://x.example/a", "--section", "Sport"], "section 'Sport' is not one of"),
    ],
)
def test_picks_add_refuses_bad_input_with_exit_2(
    cli, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = cli("picks", "add", *args, "--file", str(tmp_path / "p.toml"))
    assert code == 2 and message in err


def test_picks_without_a_picks_source_say_how_to_fix_it(cli, tmp_path: Path) -> None:
    path = config(tmp_path, (str(EXAMPLES / "feeds/europe.xml"), "feed"))
    code, _, err = cli("--config", path, "picks", "list")
    assert code == 2 and 'no [[sources]] with kind = "picks"' in err


def test_build_exits_0_with_a_warning_per_failed_source_and_4_when_none_work(
    cli, tmp_path: Path
) -> None:
    gone = tmp_path / "gone.xml"
    path = config(tmp_path, (str(EXAMPLES / "feeds/europe.xml"), "feed"), (str(gone), "feed"))
    text = Path(path).read_text().replace('kind = "feed"\n', 'kind = "feed"\nsection = "Europe"\n')
    Path(path).write_text(text)
    code, _, err = cli("--config", path, "build", "--now", "2026-11-20T09:00")
    assert code == 0 and f"warning: source failed: {gone}: file not found: {gone}" in err
    only_gone = config(tmp_path, (str(gone), "feed"))
    code, _, err = cli("--config", only_gone, "build", "--now", "2026-11-20T09:00")
    assert code == 4 and "no source could be read" in err and "file not found" in err


def test_a_user_agent_with_a_line_break_is_a_config_error(cli, tmp_path: Path) -> None:
    path = config(tmp_path, (str(EXAMPLES / "feeds/europe.xml"), "feed"))
    Path(path).write_text(Path(path).read_text() + '\n[gather]\nuser_agent = "x\\r\\nX-Evil: 1"\n')
    code, _, err = cli("--config", path, "sources", "check")
    assert code == 2 and "[gather] user_agent: Value error, must be one non-empty line" in err


def test_articles_list_of_a_section_that_does_not_exist_names_the_sections(cli) -> None:
    code, out, err = cli("articles", "list", "--section", "Sport")
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: --section 'Sport' is not a section of this newsletter (configured: Middle East, "
        "Europe, Asia, Military Industrial Complex, Diplomacy)"
    )
