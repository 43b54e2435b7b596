"""`digest edition ...`, `digest build` and `digest send` as staff use them for issue 10: list,
show, edit, approve, send within the window or with `--force --reason`; every mistake is one
line on stderr with its exit code, never a traceback."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.edition.articles import week_filter
from digest.store.db import make_engine, session_factory
from digest.store.models import Article, Edition
from tests.conftest import ROOT, CliRun

BUILD = ("build", "--now", "2026-11-20T09:00")
IN_WINDOW = "2026-11-20T10:00"
LATE = "2026-11-23T09:00"  # the Monday after: the 24-hour window closed on Saturday


def _one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def _show(cli: CliRun, edition_id: int = 1) -> dict[str, Any]:
    code, out, err = cli("edition", "show", str(edition_id), "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def _left_out(tmp_path: Path, edition_id: int = 1) -> list[Article]:
    """The week's articles the ranking left out (read from the CLI's database)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with session_factory(engine)() as session:
            edition = session.get(Edition, edition_id)
            assert edition is not None
            chosen = {i.article_id for i in edition.items}
            query = select(Article).where(week_filter(edition.window_start, edition.cutoff))
            return [a for a in session.scalars(query.order_by(Article.id)) if a.id not in chosen]
    finally:
        engine.dispose()


@pytest.fixture
def built(cli: CliRun) -> CliRun:
    """The demo's 15 subscribers and the 20 November draft (edition 1)."""
    code, _, err = cli("subscribers", "import", str(ROOT / "examples" / "subscribers.csv"))
    assert code == 0, err
    code, _, err = cli(*BUILD)
    assert code == 0, err
    return cli


@pytest.fixture
def sent(built: CliRun) -> CliRun:
    code, _, err = built("edition", "approve", "1")
    assert code == 0, err
    code, _, err = built("send", "--now", IN_WINDOW)
    assert code == 0, err
    assert _show(built)["status"] == "sent"
    return built


def test_list_with_no_editions_says_how_to_make_one(cli: CliRun) -> None:
    code, out, _ = cli("edition", "list")
    assert code == 0 and "No editions yet: `digest build` makes the first draft." in out


def test_list_shows_each_edition_with_its_status_and_week(built: CliRun) -> None:
    code, out, _ = built("edition", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if "draft" in line)
    assert "2026-11-13 09:00 → 2026-11-20 09:00" in row
    assert "The Weekly Round-up: November 20, 2026" in row
    assert " 12 " in row


def test_list_json(built: CliRun) -> None:
    code, out, _ = built("edition", "list", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["id"] == 1 and row["status"] == "draft" and row["items"] == 12
    assert row["window_start"] == "2026-11-13T14:00:00+00:00"
    assert row["cutoff"] == "2026-11-20T14:00:00+00:00"
    assert row["send_window"] == ["2026-11-20T14:00:00+00:00", "2026-11-21T14:00:00+00:00"]


def test_show_json_has_items_with_reasons_variants_with_recipients_and_history(
    built: CliRun,
) -> None:
    data = _show(built)
    assert data["status"] == "draft" and data["subject"].startswith("The Weekly Round-up")
    assert [i["position"] for i in data["items"]] == list(range(1, 13))
    assert all(i["reasons"] and i["score"] > 0 and i["url"] for i in data["items"])
    assert data["variants"], "the demo's subscribers get it"
    assert all(v["recipients"] > 0 and v["sections"] for v in data["variants"])
    assert sum(v["recipients"] for v in data["variants"]) == 15
    [built_event] = data["history"]
    assert built_event["action"] == "built" and built_event["to"] == "draft"


def test_show_as_text_has_the_window_the_articles_and_the_history(built: CliRun) -> None:
    code, out, _ = built("edition", "show", "1")
    assert code == 0
    assert "Edition 1: draft" in out
    assert "Week: 2026-11-13 09:00 → 2026-11-20 09:00 EST (America/New_York)" in out
    assert "Send window: 2026-11-20 09:00 → 2026-11-21 09:00" in out
    for title in ("Articles", "Variants", "History"):
        assert title in out


def test_pin_drop_move_and_subject_from_the_command_line(built: CliRun, tmp_path: Path) -> None:
    outsider = _left_out(tmp_path)[0]
    code, out, err = built("edition", "pin", "1", outsider.url + "?utm_source=newsletter")
    assert code == 0, err
    assert "Edition 1 (draft): article pinned at position" in out
    items = {i["article_id"]: i for i in _show(built)["items"]}
    assert items[outsider.id]["pinned"]

    top = _show(built)["items"][0]["article_id"]
    code, out, _ = built("edition", "drop", "1", str(top))
    assert code == 0 and "Edition 1 (draft): article dropped." in out
    assert top not in {i["article_id"] for i in _show(built)["items"]}

    last = _show(built)["items"][-1]
    code, out, _ = built("edition", "move", "1", str(last["article_id"]), "--to", "1")
    assert code == 0 and "article now at position 1." in out
    assert _show(built)["items"][0]["article_id"] == last["article_id"]

    code, out, _ = built("edition", "move", "1", str(outsider.id), "--section", "Diplomacy")
    assert code == 0
    moved = next(i for i in _show(built)["items"] if i["article_id"] == outsider.id)
    assert moved["section"] == "Diplomacy"

    code, out, _ = built("edition", "subject", "1", "Thanksgiving week, in brief")
    assert code == 0 and "Edition 1 (draft): subject set." in out
    assert _show(built)["subject"] == "Thanksgiving week, in brief"

    edits = [h for h in _show(built)["history"] if h["action"] == "edited"]
    assert len(edits) == 5


def test_edits_survive_a_rebuild_from_the_command_line(built: CliRun, tmp_path: Path) -> None:
    outsider = _left_out(tmp_path)[0]
    built("edition", "pin", "1", str(outsider.id))
    built("edition", "intro", "1", "A short week.")
    code, _, err = built(*BUILD)
    assert code == 0 and "warning" not in err
    data = _show(built)
    assert data["intro"] == "A short week."
    assert outsider.id in {i["article_id"] for i in data["items"]}
    assert [h["action"] for h in data["history"]][-1] == "rebuilt"


def test_editing_an_approved_edition_warns_that_it_is_a_draft_again(built: CliRun) -> None:
    built("edition", "approve", "1")
    code, out, err = built("edition", "preheader", "1", "Gaza, Ankara, the IMF")
    assert code == 0
    assert "Edition 1 (draft): preheader set." in out
    assert err.strip() == (
        "warning: edition 1 was approved; this edit returned it to draft: approve it again "
        "with `digest edition approve 1`"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("edition", "show", "99"), "no edition with id 99"),
        (("edition", "pin", "99", "1"), "no edition with id 99"),
        (("edition", "approve", "99"), "no edition with id 99"),
        (("edition", "pin", "1", "9999"), "no article with id 9999"),
        (
            ("edition", "drop", "1", "https://meridianreview.example/europe/no-such-story/"),
            "no stored article has the URL",
        ),
    ],
)
def test_unknown_edition_or_article_exits_3(
    built: CliRun, args: tuple[str, ...], fragment: str
) -> None:
    before = _show(built)
    code, _, err = built(*args)
    assert code == 3
    _one_line_error(err, fragment)
    assert _show(built) == before


def test_pinning_an_article_outside_the_week_exits_6_and_changes_nothing(
    built: CliRun, tmp_path: Path
) -> None:
    before = _show(built)
    code, _, err = built("edition", "pin", "1", _an_old_article(tmp_path))
    assert code == 6
    _one_line_error(err, "is outside edition 1's week", "not pinned")
    assert _show(built) == before


def _an_old_article(tmp_path: Path) -> str:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with session_factory(engine)() as session:
            first = session.scalars(select(Article).order_by(Article.published_at)).first()
            assert first is not None
            return str(first.id)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ("edition", "drop", "1", "{article}"),
        ("edition", "subject", "1", "Too late"),
        ("edition", "approve", "1"),
        ("edition", "cancel", "1"),
    ],
)
def test_a_sent_edition_cannot_be_changed_exit_6(sent: CliRun, args: tuple[str, ...]) -> None:
    before = _show(sent)
    article = str(before["items"][0]["article_id"])
    code, _, err = sent(*(a.format(article=article) for a in args))
    assert code == 6
    _one_line_error(err, "edition 1 is sent")
    assert _show(sent) == before


def test_sending_a_draft_exits_6_and_names_the_approve_command(built: CliRun) -> None:
    code, _, err = built("send", "--now", IN_WINDOW)
    assert code == 6
    _one_line_error(err, "edition 1 is a draft, not approved", "`digest edition approve 1`")
    assert _show(built)["status"] == "draft"


def test_sending_twice_exits_6(sent: CliRun) -> None:
    code, _, err = sent("send", "--edition", "1", "--now", IN_WINDOW)
    assert code == 6
    _one_line_error(err, "edition 1 was already sent")
    # When, to the minute, in the publication's timezone (New York), not a raw timestamp.
    assert re.search(r"\(finished \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T\)$", err.strip()), err


def test_a_second_build_of_unchanged_sources_says_they_are_unchanged(cli: CliRun) -> None:
    code, out, _ = cli("build", "--now", "2026-11-20T09:00")
    assert code == 0 and "(49 gathered from 6/6 sources)" in out
    code, out, _ = cli("build", "--now", "2026-11-20T09:00")
    assert code == 0
    assert "Rebuilt draft edition 1: 12 articles in 5 sections" in out
    # Five feeds answer "not modified" (their files did not change); the picks file is read.
    assert "(nothing new: 5/6 sources unchanged since they were last read)" in out
    assert "0 gathered" not in out


def test_one_section_is_not_one_sections(cli: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_NEWSLETTER__MIN_ITEMS", "1")
    monkeypatch.setenv("DIGEST_NEWSLETTER__MAX_ITEMS", "1")  # the two picks are pinned anyway
    code, out, err = cli("build", "--now", "2026-11-20T09:00")
    assert code == 0, err
    assert "2 articles in 1 section, chosen from" in out and "1 sections" not in out


def test_a_dry_run_of_a_sent_edition_exits_6(sent: CliRun) -> None:
    code, out, err = sent("send", "--dry-run", "--edition", "1", "--now", IN_WINDOW)
    assert code == 6 and "would get" not in out
    _one_line_error(err, "edition 1 was already sent")


def test_a_late_send_is_refused_with_exit_6(built: CliRun, tmp_path: Path) -> None:
    built("edition", "approve", "1")
    code, _, err = built("send", "--now", LATE)
    assert code == 6
    _one_line_error(err, "send window closed at 2026-11-21 09:00 EST", "--force --reason TEXT")
    assert _show(built)["status"] == "approved"
    assert not (tmp_path / "outbox").exists()


def test_force_without_a_reason_is_a_usage_error(built: CliRun) -> None:
    built("edition", "approve", "1")
    code, _, err = built("send", "--now", LATE, "--force")
    assert code == 2
    _one_line_error(err, "--force needs --reason TEXT")
    assert _show(built)["status"] == "approved"


def test_force_with_a_reason_sends_late_and_the_history_keeps_who_and_why(
    built: CliRun, tmp_path: Path
) -> None:
    built("edition", "approve", "1")
    code, out, err = built(
        "send", "--now", LATE, "--force", "--reason", "ESP outage all weekend", "--as", "Maria"
    )
    assert code == 0, err
    assert "15 recipients planned: 15 accepted." in out
    data = _show(built)
    assert data["status"] == "sent"
    started = next(h for h in data["history"] if h["action"] == "send started")
    assert started["actor"] == "Maria" and started["forced"] is True
    assert started["reason"] == "ESP outage all weekend"
    assert (started["from"], started["to"]) == ("approved", "sending")
    assert len(list((tmp_path / "outbox" / "edition-1").glob("*.eml"))) == 15


def test_a_send_to_nobody_exits_1_and_the_edition_stays_approved(cli: CliRun) -> None:
    cli(*BUILD)
    cli("edition", "approve", "1")
    code, _, err = cli("send", "--now", IN_WINDOW)
    assert code == 1
    _one_line_error(err, "edition 1 has no recipients", "it stays approved")
    assert _show(cli)["status"] == "approved"


def test_a_thin_approval_needs_force_and_reason(cli: CliRun, tmp_path: Path) -> None:
    """Drop articles until fewer than min_items (5) are left: approval then needs the override."""
    cli(*BUILD)
    while len(items := _show(cli)["items"]) >= 5:
        code, _, _ = cli("edition", "drop", "1", str(items[0]["article_id"]))
        assert code == 0
    assert items
    code, _, err = cli("edition", "approve", "1")
    assert code == 6
    _one_line_error(err, "fewer than min_items (5)", "--force --reason TEXT")
    code, _, err = cli("edition", "approve", "1", "--force")
    assert code == 2
    _one_line_error(err, "--force needs --reason")
    code, out, _ = cli("edition", "approve", "1", "--force", "--reason", "a quiet week")
    assert code == 0 and "Edition 1 (approved)" in out
    approved = _show(cli)["history"][-1]
    assert approved["forced"] is True and approved["reason"] == "a quiet week"


def _config_with_a_broken_source(tmp_path: Path) -> Path:
    text = (ROOT / "digest.toml").read_text(encoding="utf-8")
    text = text.replace('url = "examples/', f'url = "{ROOT}/examples/')
    text += '\n[[sources]]\nurl = "examples/feeds/gone.xml"\nkind = "feed"\nsection = "Asia"\n'
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_thin_week_prints_the_source_warnings_before_the_error_and_exits_5(
    cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_CONFIG", str(_config_with_a_broken_source(tmp_path)))
    code, out, err = cli("build", "--now", "2020-01-01T09:00")
    assert code == 5 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("warning: source failed: ") and "gone.xml" in lines[0]
    assert lines[-1].startswith("error: only 0 article(s) between")
    assert lines[-1].endswith("edition 1 is recorded as skipped")
    code, out, _ = cli("edition", "list", "--json")
    [row] = json.loads(out)
    assert row["status"] == "skipped" and "min_items is 5" in row["status_reason"]


def test_a_build_overlapping_a_sent_week_exits_6(sent: CliRun) -> None:
    code, _, err = sent("build", "--now", "2026-11-18T09:00")
    assert code == 6
    _one_line_error(err, "overlaps edition 1", "which is sent: no edition was built")
    code, out, _ = sent("edition", "list", "--json")
    assert [r["id"] for r in json.loads(out)] == [1]


def test_as_name_lands_in_the_history_and_the_login_is_the_default(built: CliRun) -> None:
    built("edition", "approve", "1", "--as", "Maria Lopez")
    built("edition", "unapprove", "1", "--reason", "wrong photo")
    history = _show(built)["history"]
    assert (history[-2]["actor"], history[-2]["action"]) == ("Maria Lopez", "approved")
    assert (history[-1]["actor"], history[-1]["action"]) == (getpass.getuser(), "unapproved")
    assert history[-1]["reason"] == "wrong photo"


def test_skip_needs_a_reason(built: CliRun) -> None:
    code, _, err = built("edition", "skip", "1")
    assert code == 2 and "--reason" in err and "Traceback" not in err
    code, out, _ = built("edition", "skip", "1", "--reason", "office closed")
    assert code == 0 and "skipped; the next build reaches back" in out
    assert _show(built)["status_reason"] == "office closed"


def test_a_build_that_loses_a_race_exits_6_with_one_line(
    cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While this `digest build` gathers, another build of the same week (another terminal,
    the scheduler) finishes: this one says so and changes nothing."""
    import os

    from digest.config import config_path, load_settings
    from digest.edition import build as build_module

    real_gather = build_module.gather

    def gather_while_another_build_finishes(*args: Any, **kw: Any) -> Any:
        monkeypatch.setattr(build_module, "gather", real_gather)
        settings = load_settings(config_path(None, dict(os.environ)))
        engine = make_engine(settings.database_url)
        try:
            build_module.build_edition(
                session_factory(engine), settings, kw["now"], actor="the scheduler"
            )
        finally:
            engine.dispose()
        return real_gather(*args, **kw)

    monkeypatch.setattr(build_module, "gather", gather_while_another_build_finishes)
    code, out, err = cli(*BUILD, "--as", "ann")
    assert code == 6 and "Built draft" not in out
    _one_line_error(err, "another build or an edit of the week ending", "changed nothing")
    history = _show(cli)["history"]
    assert [(h["actor"], h["action"]) for h in history] == [("the scheduler", "built")]


# --- preflight (issue 12) ---------------------------------------------------------------------


def test_preflight_lists_every_variant_and_exits_0_when_all_pass(built: CliRun) -> None:
    code, out, err = built("preflight", "--edition", "1")
    assert code == 0, err
    assert "Military Industrial Complex, Middle East, Europe, Asia, Diplomacy" in out
    assert "11 variants passed (0 failed checks" in out
    assert "warning: CSS" in err  # the caniemail warnings, each once
    assert len([line for line in err.splitlines() if "word-spacing" in line]) == 1


def test_preflight_json_has_every_check_of_every_variant(built: CliRun) -> None:
    code, out, _ = built("preflight", "--edition", "1", "--variant", "Europe", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True and [v["sections"] for v in report["variants"]] == [["Europe"]]
    names = {c["check"] for c in report["variants"][0]["checks"]}
    assert {"size", "clip", "list-unsubscribe", "one-click", "text", "subject"} <= names


def test_a_failing_preflight_exits_10_and_blocks_approval_until_forced(built: CliRun) -> None:
    code, _, err = built("edition", "subject", "1", "Too long: " + "a fine subject " * 8)
    assert code == 0, err
    code, out, err = built("preflight", "--edition", "1")
    assert code == 10 and "subject: the subject has 129 characters" in err and "FAILED" in out
    code, _, err = built("edition", "approve", "1", "--as", "ann")
    assert code == 10 and "approving refused" in err and "Traceback" not in err
    assert _show(built)["status"] == "draft"
    code, _, err = built(
        "edition", "approve", "1", "--as", "ann", "--force", "--reason", "legal wants it"
    )
    assert code == 0, err
    [approved] = [h for h in _show(built)["history"] if h["action"] == "approved"]
    assert approved["forced"] and approved["reason"] == "legal wants it"


def test_preview_of_one_variant_writes_its_own_files_and_the_preflight_summary(
    built: CliRun, tmp_path: Path
) -> None:
    code, out, err = built(
        "preview", "--variant", "Asia", "--no-screenshots", "--out", str(tmp_path / "p")
    )
    assert code == 0, err
    assert (tmp_path / "p" / "edition-1-asia.html").is_file()
    assert "preflight of edition 1: 1 variant passed" in out
    html = (tmp_path / "p" / "edition-1-asia.html").read_text()
    assert "Asia" in html and "Diplomacy</h2>" not in html


def test_preflight_with_an_unknown_section_is_one_line_exit_2(built: CliRun) -> None:
    code, _, err = built("preflight", "--variant", "Sport")
    assert code == 2
    _one_line_error(err, "no section 'Sport'", "its sections are:")
