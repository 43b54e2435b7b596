"""Ranking: named signals with reasons, every candidate explained, and the selection's rules
(pins, drops, quotas, minimums, authors, near-duplicates, the lead) as examples and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.gather.candidate import Candidate
from digest.rank import RankResult, RankRules, rank, score

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def cand(title: str, section: str, hours_ago: float, **kw: object) -> Candidate:
    return Candidate(
        url=f"https://r.example/{title.replace(' ', '-')}",
        title=title,
        section=section,
        published_at=NOW - timedelta(hours=hours_ago),
        **kw,  # type: ignore[arg-type]
    )


def titles(result: RankResult) -> list[str]:
    return [r.candidate.title for r in result.chosen]


def outcome(result: RankResult, title: str) -> tuple[bool, tuple[str, ...]]:
    found = next(r for r in result.candidates if r.candidate.title == title)
    return found.chosen, found.reasons


# --- scoring ---------------------------------------------------------------------------------


def test_newer_article_scores_higher() -> None:
    rules = RankRules()
    assert (
        score(cand("new", "A", 1), NOW, rules).score
        > score(cand("old", "A", 100), NOW, rules).score
    )


def test_score_halves_every_half_life() -> None:
    assert score(cand("x", "A", 72), NOW, RankRules(half_life_hours=72)).score == 0.5
    assert score(cand("x", "A", 24), NOW, RankRules(half_life_hours=24)).score == 0.5


def test_recency_reason_names_the_section_weight() -> None:
    ranked = score(cand("x", "A", 48), NOW, RankRules(section_weights={"A": 2.0}))
    assert ranked.reasons == ("published 2.0 days ago: recency 0.63 x section weight 2.0",)
    assert abs(ranked.score - 1.26) < 0.001


def test_popularity_and_clicks_are_normalised_over_the_week() -> None:
    a, b = cand("a story here", "A", 10), cand("b story here", "A", 10)
    rules = RankRules(
        popularity={a.url: 5000, b.url: 2500},
        clicks={b.url: 40},
        popularity_weight=1.0,
        clicks_weight=0.5,
        sections=("A",),
    )
    result = rank([a, b], NOW, rules)
    _, a_reasons = outcome(result, "a story here")
    _, b_reasons = outcome(result, "b story here")
    assert "popularity 1.00 x weight 1: +1.00" in a_reasons
    assert "popularity 0.50 x weight 1: +0.50" in b_reasons
    assert "clicks in past editions 1.00 x weight 0.5: +0.50" in b_reasons


def test_image_excerpt_and_pick_bonuses_say_so() -> None:
    c = cand("x", "A", 48, image_url="https://i.example/1.jpg", summary="Text.", is_pick=True)
    ranked = score(c, NOW, RankRules(image_bonus=0.1, excerpt_bonus=0.05, pick_bonus=1.0))
    assert abs(ranked.score - (0.63 + 0.1 + 0.05 + 1.0)) < 0.01
    assert ranked.reasons[1:] == (
        "has an image: +0.10",
        "has an excerpt: +0.05",
        "editor's pick: +1.00",
    )


# --- selection and its reasons ---------------------------------------------------------------


def test_section_quota_caps_a_busy_section_and_says_so() -> None:
    many = [cand(f"a{i}", "Middle East", i) for i in range(5)] + [cand("b", "B", 50)]
    result = rank(many, NOW, RankRules(max_items=10, per_section=2, sections=("Middle East", "B")))
    assert titles(result).count("a0") + titles(result).count("a1") == 2
    assert outcome(result, "a2") == (
        False,
        (
            "published 0.1 days ago: recency 0.98 x section weight 1.0",
            "section quota Middle East 2 of 2: left out",
        ),
    )


def test_each_section_gets_a_place_before_any_gets_a_second() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(5)] + [cand("b", "B", 150), cand("c", "C", 160)]
    result = rank(many, NOW, RankRules(max_items=3, per_section=3, sections=("A", "B", "C")))
    assert sorted(r.candidate.section or "" for r in result.chosen) == ["A", "B", "C"]
    chosen, reasons = outcome(result, "a1")
    assert not chosen and reasons[-1] == "below the cut: rank 2 of 7"


def test_per_section_minimum_of_zero_is_pure_score_order() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(5)] + [cand("b", "B", 150)]
    result = rank(many, NOW, RankRules(max_items=3, per_section_min=0, sections=("A", "B")))
    assert titles(result) == ["a0", "a1", "a2"]


def test_per_section_minimum_of_two() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(5)] + [cand("b0", "B", 100), cand("b1", "B", 101)]
    result = rank(many, NOW, RankRules(max_items=4, per_section_min=2, sections=("A", "B")))
    assert sorted(titles(result)) == ["a0", "a1", "b0", "b1"]


def test_at_most_n_per_author() -> None:
    many = [cand(f"a{i}", "A", i, author="Ann") for i in range(4)] + [cand("z", "A", 50)]
    result = rank(many, NOW, RankRules(max_items=3, max_per_author=2, sections=("A",)))
    assert sorted(titles(result)) == ["a0", "a1", "z"]
    assert outcome(result, "a2")[1][-1] == "author quota Ann 2 of 2: left out"


def test_the_lead_is_the_highest_score_and_reads_first() -> None:
    many = [cand("b", "B", 1), cand("a", "A", 2), cand("a2", "A", 3)]
    result = rank(many, NOW, RankRules(sections=("A", "B")))
    assert titles(result) == ["b", "a", "a2"]
    assert result.lead is not None and result.lead.candidate.title == "b"
    assert "lead story: the highest score" in result.lead.reasons


def test_staff_can_pin_another_lead() -> None:
    many = [cand("b", "B", 1), cand("a", "A", 2), cand("a2", "A", 3)]
    a2 = many[2]
    rules = RankRules(sections=("A", "B"), pins={a2.url: "ann"}, lead=(a2.url, "ann"))
    result = rank(many, NOW, rules)
    assert titles(result) == ["a2", "a", "b"]
    assert outcome(result, "a2")[1][-2:] == ("pinned by ann", "lead story: chosen by ann")


def test_sections_stay_in_configured_order_after_the_lead() -> None:
    many = [cand("c", "C", 1), cand("b", "B", 2), cand("a", "A", 3)]
    assert titles(rank(many, NOW, RankRules(sections=("A", "B", "C")))) == ["c", "a", "b"]


def test_articles_outside_the_configured_sections_are_left_out() -> None:
    result = rank([cand("x", "Sport", 1), cand("y", "A", 1)], NOW, RankRules(sections=("A",)))
    assert titles(result) == ["y"]
    assert (
        outcome(result, "x")[1][-1]
        == "section Sport is not one of the newsletter's sections: left out"
    )


def test_pins_are_in_and_drops_are_out_whatever_the_score() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(6)]
    old, best = cand("old", "A", 160), many[0]
    rules = RankRules(max_items=3, sections=("A",), pins={old.url: "ann"}, drops={best.url: "bob"})
    result = rank([*many, old], NOW, rules)
    assert "old" in titles(result) and "a0" not in titles(result)
    assert outcome(result, "a0")[1][-1] == "dropped by bob"
    assert len(result.chosen) == 3


def test_editor_picks_are_pins() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(4)] + [cand("pick", "A", 150, is_pick=True)]
    result = rank(many, NOW, RankRules(max_items=2, pick_bonus=0.0, sections=("A",)))
    assert "pick" in titles(result)
    assert "pinned: an editor's pick" in outcome(result, "pick")[1]


def test_sent_articles_stay_out_unless_staff_pin_them() -> None:
    a, b = cand("a", "A", 1), cand("b", "A", 2)
    result = rank(
        [a, b], NOW, RankRules(sections=("A",), sent_in={a.url: 12, b.url: 12}, pins={b.url: "ann"})
    )
    assert titles(result) == ["b"]
    assert outcome(result, "a")[1][-1] == "sent in edition 12: left out"
    assert "sent in edition 12: kept, as it is pinned" in outcome(result, "b")[1]


def test_a_sent_pick_stays_out() -> None:
    a = cand("a", "A", 1, is_pick=True)
    assert titles(rank([a], NOW, RankRules(sections=("A",), sent_in={a.url: 3}))) == []


def test_near_duplicates_are_left_out_with_the_headline_they_repeat() -> None:
    first = cand("Turkey's New Naval Strategy, Explained", "A", 1)
    again = replace(cand("x", "A", 2), title="TURKEY\u2019S NEW NAVAL STRATEGY \u2014 EXPLAINED")
    result = rank([first, again], NOW, RankRules(sections=("A",)))
    assert titles(result) == [first.title]
    assert outcome(result, again.title)[1][-1] == (
        "near-duplicate of 'Turkey's New Naval Strategy, Explained': left out"
    )


def test_every_candidate_has_an_outcome_and_a_rank() -> None:
    many = [cand(f"a{i}", "A", i) for i in range(6)]
    result = rank(many, NOW, RankRules(max_items=2, sections=("A",)))
    assert [r.rank for r in result.candidates] == list(range(1, 7))
    assert all(len(r.reasons) >= 2 for r in result.candidates)


def test_ranking_is_deterministic_on_ties() -> None:
    same = [cand("b", "A", 5), cand("a", "A", 5)]
    first = rank(same, NOW, RankRules(sections=("A",), per_section_min=0))
    second = rank(list(reversed(same)), NOW, RankRules(sections=("A",), per_section_min=0))
    assert titles(first) == titles(second) == ["a", "b"]


# --- properties ------------------------------------------------------------------------------

SECTIONS = ("A", "B", "C")
WORDS = ("alpha", "bravo", "delta", "echo", "golf", "hotel", "kilo", "lima")


@st.composite
def weeks(draw: st.DrawFn) -> tuple[list[Candidate], RankRules]:
    """Up to 16 candidates with distinct headlines (some near-duplicates) and random rules."""
    n = draw(st.integers(0, 16))
    out = []
    for i in range(n):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=4, unique=True))
        out.append(
            Candidate(
                url=f"https://p.example/{i}",
                title=" ".join(words) + f" {draw(st.sampled_from(['', str(i)]))}",
                section=draw(st.sampled_from(SECTIONS)),
                author=draw(st.sampled_from([None, "ann", "bob"])),
                published_at=NOW - timedelta(hours=draw(st.integers(0, 200))),
                is_pick=draw(st.booleans()) and i % 5 == 0,
            )
        )
    urls = [c.url for c in out]
    picked = draw(st.lists(st.sampled_from(urls), max_size=3, unique=True)) if urls else []
    dropped = draw(st.lists(st.sampled_from(urls), max_size=3, unique=True)) if urls else []
    rules = RankRules(
        max_items=draw(st.integers(1, 8)),
        per_section=draw(st.integers(1, 4)),
        per_section_min=draw(st.integers(0, 1)),
        max_per_author=draw(st.sampled_from([None, 1, 2])),
        sections=SECTIONS,
        pins={u: "ann" for u in picked},
        drops={u: "bob" for u in dropped if u not in picked},
    )
    return out, rules


def pinned_urls(candidates: list[Candidate], rules: RankRules) -> set[str]:
    return {
        c.url for c in candidates if (c.url in rules.pins or c.is_pick) and c.url not in rules.drops
    }


@given(weeks())
def test_pins_always_in_drops_always_out_no_duplicates(
    week: tuple[list[Candidate], RankRules],
) -> None:
    candidates, rules = week
    result = rank(candidates, NOW, rules)
    chosen = [r.candidate.url for r in result.chosen]
    assert len(chosen) == len(set(chosen))
    assert pinned_urls(candidates, rules) <= set(chosen)
    assert not set(rules.drops) & set(chosen)
    assert len(result.candidates) == len(candidates)
    assert all(r.chosen == (r.candidate.url in chosen) for r in result.candidates)
    assert all(r.reasons for r in result.candidates)


@given(weeks())
def test_quotas_and_max_items_hold_for_all_but_pins(
    week: tuple[list[Candidate], RankRules],
) -> None:
    candidates, rules = week
    result = rank(candidates, NOW, rules)
    pins = pinned_urls(candidates, rules)
    others = [r.candidate for r in result.chosen if r.candidate.url not in pins]
    assert len(result.chosen) <= max(rules.max_items, len(pins))
    for section in SECTIONS:
        in_section = [r for r in result.chosen if r.candidate.section == section]
        if any(c.section == section for c in others):
            assert len(in_section) <= rules.per_section
    if rules.max_per_author is not None:
        for author in ("ann", "bob"):
            by = [c for c in others if c.author == author]
            pinned_by = [
                r for r in result.chosen if r.candidate.author == author and r.candidate.url in pins
            ]
            assert not by or len(by) + len(pinned_by) <= rules.max_per_author


@given(weeks())
def test_min_items_reached_when_enough_candidates_are_eligible(
    week: tuple[list[Candidate], RankRules],
) -> None:
    """No quota set: the edition fills up to max_items from whatever is not dropped or a twin."""
    candidates, rules = week
    rules = replace(rules, per_section=99, max_per_author=None, title_similarity=1.0)
    result = rank(candidates, NOW, rules)
    eligible = {c.url for c in candidates if c.url not in rules.drops}
    twins = sum(1 for r in result.candidates if r.reasons[-1].startswith("near-duplicate"))
    assert len(result.chosen) >= min(rules.max_items, len(eligible) - twins)
    assert result.lead is not None or not result.chosen


@given(weeks(), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order(
    week: tuple[list[Candidate], RankRules], shuffler: object
) -> None:
    candidates, rules = week
    shuffled = list(candidates)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = rank(candidates, NOW, rules), rank(shuffled, NOW, rules)
    assert first == second


@given(weeks(), st.sampled_from(SECTIONS))
def test_a_lower_scored_newcomer_removes_no_one_except_by_quota(
    week: tuple[list[Candidate], RankRules], section: str
) -> None:
    """Lower than everyone, not a pin: it only takes a place nobody else wanted, or one the
    section minimum keeps for its section."""
    candidates, rules = week
    newcomer = Candidate(
        url="https://p.example/new", title="zulu yankee xray whiskey", section=section,
        published_at=None,
    )  # fmt: skip
    before = {r.candidate.url for r in rank(candidates, NOW, rules).chosen}
    after_result = rank([*candidates, newcomer], NOW, rules)
    after = {r.candidate.url for r in after_result.chosen}
    if before <= after:
        return
    reasons = outcome(after_result, newcomer.title)[1]
    assert any(r.startswith("chosen for the section minimum") for r in reasons)


@given(weeks())
def test_per_section_minimum_holds_when_there_is_room(
    week: tuple[list[Candidate], RankRules],
) -> None:
    """Room for every section's minimum beside the pins: each section gets its minimum (or all
    it has), whatever the scores."""
    candidates, rules = week
    # Headlines made unique (word sets differ), so none is left out as a near-duplicate.
    candidates = [c.with_(title=f"story{i} {c.title}") for i, c in enumerate(candidates)]
    rules = replace(rules, per_section_min=1, max_per_author=None, title_similarity=1.0)
    pins = pinned_urls(candidates, rules)
    if rules.max_items < len(pins) + len(SECTIONS):
        rules = replace(rules, max_items=len(pins) + len(SECTIONS))
    result = rank(candidates, NOW, rules)
    for section in SECTIONS:
        eligible = [c for c in candidates if c.section == section and c.url not in rules.drops]
        chosen = [r for r in result.chosen if r.candidate.section == section]
        assert len(chosen) >= min(1, len(eligible))
