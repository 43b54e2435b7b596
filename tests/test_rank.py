"""Ranking: recency with reasons, a section quota, every section represented first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.gather.candidate import Candidate
from digest.rank import RankRules, rank, score

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def cand(title: str, section: str, hours_ago: float, **kw: object) -> Candidate:
    return Candidate(
        url=f"https://r.example/{title.replace(' ', '-')}",
        title=title,
        section=section,
        published_at=NOW - timedelta(hours=hours_ago),
        **kw,  # type: ignore[arg-type]
    )


def test_newer_article_scores_higher() -> None:
    rules = RankRules()
    assert (
        score(cand("new", "A", 1), NOW, rules).score
        > score(cand("old", "A", 100), NOW, rules).score
    )


def test_score_halves_every_half_life() -> None:
    rules = RankRules(half_life_hours=72)
    assert score(cand("x", "A", 72), NOW, rules).score == 0.5


def test_every_score_carries_a_readable_reason() -> None:
    ranked = score(cand("x", "A", 48), NOW, RankRules())
    assert ranked.reasons == ("published 2.0 days ago: recency 0.63",)


def test_editor_pick_gets_a_bonus_and_says_so() -> None:
    ranked = score(cand("x", "A", 48, is_pick=True), NOW, RankRules(pick_bonus=1.0))
    assert ranked.score == 1.63
    assert "editor's pick: +1.00" in ranked.reasons


def test_section_quota_caps_a_busy_section() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(10)] + [cand("b", "B", 50)]
    chosen = rank(many, NOW, RankRules(max_items=10, per_section=3, sections=("A", "B")))
    assert [r.candidate.section for r in chosen].count("A") == 3


def test_each_section_gets_a_place_before_any_gets_a_second() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(5)] + [cand("b", "B", 150), cand("c", "C", 160)]
    chosen = rank(many, NOW, RankRules(max_items=3, per_section=3, sections=("A", "B", "C")))
    assert sorted(r.candidate.section or "" for r in chosen) == ["A", "B", "C"]


def test_result_is_grouped_in_configured_section_order() -> None:
    many = [cand("b", "B", 1), cand("a", "A", 2), cand("a2", "A", 3)]
    chosen = rank(many, NOW, RankRules(sections=("A", "B")))
    assert [r.candidate.title for r in chosen] == ["a", "a2", "b"]


def test_articles_outside_the_configured_sections_are_left_out() -> None:
    chosen = rank([cand("x", "Sport", 1), cand("y", "A", 1)], NOW, RankRules(sections=("A",)))
    assert [r.candidate.title for r in chosen] == ["y"]


def test_quota_reason_is_recorded_on_the_chosen_item() -> None:
    chosen = rank([cand("y", "A", 1)], NOW, RankRules(per_section=2, sections=("A",)))
    assert chosen[0].reasons[-1] == "section A: article 1 of at most 2"


def test_ranking_is_deterministic_on_ties() -> None:
    same = [cand("b", "A", 5), cand("a", "A", 5)]
    first = rank(same, NOW, RankRules(sections=("A",)))
    second = rank(list(reversed(same)), NOW, RankRules(sections=("A",)))
    assert [r.candidate.title for r in first] == [r.candidate.title for r in second] == ["a", "b"]
