"""Ranking: candidates in, every candidate's outcome out, each with the reasons behind it.

Pure: the week's inputs that live elsewhere (popularity numbers, click counts, which articles an
earlier edition sent, the staff's pins and drops) arrive as plain values in `RankRules`, read by
digest.edition. Staff must be able to see why an article is in or out, so every candidate,
chosen or not, carries its reasons, and the same input always gives the same output (ties are
broken by headline, then URL).

Score: recency (halves every `half_life_hours`) x the section's weight, plus popularity and
clicks (each normalised over the week's candidates to 0..1, times its weight), plus small
bonuses for an image, an excerpt and an editor's pick.

Selection, in this order:
1. out: a second copy of a URL, dropped by staff, outside the newsletter's sections, sent in an
   earlier edition (unless staff pinned it: an editor's pick alone does not bring it back);
2. in: pins (staff pins and editor's picks), whatever the quotas and max_items say;
3. in: the best article of each section that has fewer than `per_section_min` (so one busy
   desk cannot fill the email), best first;
4. in: the rest by score, within `per_section`, `max_per_author` and `max_items`.
A candidate whose headline is a near-duplicate of one already chosen stays out. The lead story
is the chosen article with the highest score, unless staff pinned another as the lead; the
selection reads lead first, then section by section in the configured order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.gather.candidate import Candidate
from digest.gather.titles import title_words

# Headlines of fewer words never count as near-duplicates ("Letters", "Editorial"): as in gather.
MIN_TITLE_WORDS = 3


@dataclass(frozen=True)
class RankRules:
    """The tunables ([newsletter] and [rank] settings) and the week's plain-value inputs."""

    max_items: int = 12
    per_section: int = 4
    per_section_min: int = 1
    max_per_author: int | None = None
    half_life_hours: float = 72.0
    pick_bonus: float = 1.0
    section_weights: Mapping[str, float] = field(default_factory=dict)
    popularity_weight: float = 1.0
    clicks_weight: float = 0.5
    image_bonus: float = 0.0
    excerpt_bonus: float = 0.0
    title_similarity: float = 0.8
    sections: tuple[str, ...] = ()
    # The week's inputs, by candidate URL: raw popularity and click numbers (normalised here),
    # the earlier edition that sent an article, who pinned or dropped it, and the pinned lead.
    popularity: Mapping[str, float] = field(default_factory=dict)
    clicks: Mapping[str, float] = field(default_factory=dict)
    sent_in: Mapping[str, int] = field(default_factory=dict)
    pins: Mapping[str, str] = field(default_factory=dict)
    drops: Mapping[str, str] = field(default_factory=dict)
    lead: tuple[str, str] | None = None  # (url, who)


@dataclass(frozen=True)
class Ranked:
    """One candidate's outcome: its score, whether it is in, its place in score order (1 is
    the best of the week) and every reason, scoring first, then the selection's verdict."""

    candidate: Candidate
    score: float
    reasons: tuple[str, ...] = ()
    chosen: bool = True
    rank: int = 0
    pinned: bool = False
    lead: bool = False


@dataclass(frozen=True)
class RankResult:
    """Every candidate best first (`candidates`) and the edition's articles in reading order."""

    candidates: tuple[Ranked, ...]
    chosen: tuple[Ranked, ...]

    @property
    def lead(self) -> Ranked | None:
        return next((r for r in self.chosen if r.lead), None)


@dataclass(frozen=True)
class Norms:
    """The week's largest popularity and click numbers: each candidate's share of them is its
    0..1 signal, so a big week's raw numbers do not outweigh recency."""

    popularity_max: float = 0.0
    clicks_max: float = 0.0


def norms(candidates: Sequence[Candidate], rules: RankRules) -> Norms:
    pop = [rules.popularity.get(c.url, 0.0) for c in candidates]
    clicks = [rules.clicks.get(c.url, 0.0) for c in candidates]
    return Norms(max(pop, default=0.0), max(clicks, default=0.0))


def score(
    candidate: Candidate, now: datetime, rules: RankRules, week: Norms | None = None
) -> Ranked:
    """The candidate's score and the reasons it adds up to (not yet chosen or left out)."""
    week = week or norms([candidate], rules)
    weight = rules.section_weights.get(candidate.section or "", 1.0)
    total, reasons = _recency(candidate, now, rules, weight)
    for label, value, top, factor in (
        ("popularity", rules.popularity.get(candidate.url, 0.0), week.popularity_max,
         rules.popularity_weight),
        ("clicks in past editions", rules.clicks.get(candidate.url, 0.0), week.clicks_max,
         rules.clicks_weight),
    ):  # fmt: skip
        if value > 0 and top > 0 and factor:
            share = value / top
            total += share * factor
            reasons.append(f"{label} {share:.2f} x weight {factor:g}: +{share * factor:.2f}")
    for label, present, bonus in (
        ("has an image", candidate.image_url, rules.image_bonus),
        ("has an excerpt", candidate.summary, rules.excerpt_bonus),
        ("editor's pick", candidate.is_pick, rules.pick_bonus),
    ):
        if present and bonus:
            total += bonus
            reasons.append(f"{label}: +{bonus:.2f}")
    return Ranked(candidate, round(total, 4), tuple(reasons), chosen=False)


def _recency(
    candidate: Candidate, now: datetime, rules: RankRules, weight: float
) -> tuple[float, list[str]]:
    when = candidate.published_at
    if when is None:
        return 0.0, [f"no publication date: recency 0.00 x section weight {_num(weight)}"]
    age_h = max(0.0, (now - when).total_seconds() / 3600)
    recency = math.pow(0.5, age_h / rules.half_life_hours)
    days = age_h / 24
    return recency * weight, [
        f"published {days:.1f} days ago: recency {recency:.2f} x section weight {_num(weight)}"
    ]


def _num(value: float) -> str:
    """1.0, 0.5, 1.25: a weight as staff wrote it in digest.toml."""
    return f"{value:.1f}" if value == round(value, 1) else f"{value:g}"


def rank(candidates: Sequence[Candidate], now: datetime, rules: RankRules) -> RankResult:
    """Score every candidate, choose the edition's articles, explain every outcome."""
    week = norms(candidates, rules)
    scored = sorted(
        (score(c, now, rules, week) for c in candidates),
        key=lambda r: (-r.score, r.candidate.title.lower(), r.candidate.url),
    )
    picking = _Selection(rules, len(scored))
    for position, ranked in enumerate(scored, start=1):
        picking.screen(position, ranked)
    picking.take_pins(scored)
    picking.take_section_minimums(scored)
    picking.take_the_rest(scored)
    outcomes = picking.outcomes(scored)
    return RankResult(tuple(outcomes), tuple(_reading_order(outcomes, rules)))


class _Selection:
    """The selection's bookkeeping: verdicts by rank position, and what each section, author
    and headline already holds."""

    def __init__(self, rules: RankRules, total: int) -> None:
        self.rules = rules
        self.total = total
        self.verdicts: dict[int, tuple[bool, str]] = {}
        self.notes: dict[int, str] = {}
        self.sections: Counter[str] = Counter()
        self.authors: Counter[str] = Counter()
        self.count = 0
        self.headlines: list[tuple[frozenset[str], str]] = []
        self.urls: dict[str, str] = {}
        self.pinned: set[int] = set()

    def screen(self, position: int, ranked: Ranked) -> None:
        """Step 1 (out for good), and marking the pins (in, whatever else holds)."""
        c, rules = ranked.candidate, self.rules
        sent = rules.sent_in.get(c.url)
        pinned_by = rules.pins.get(c.url) or ("an editor's pick" if c.is_pick else None)
        if c.url in self.urls:
            self.verdicts[position] = (False, f"same URL as '{self.urls[c.url]}': left out")
        elif c.url in rules.drops:
            self.verdicts[position] = (False, f"dropped by {rules.drops[c.url]}")
        elif rules.sections and (c.section or "") not in rules.sections:
            section = c.section or "(none)"
            why = f"section {section} is not one of the newsletter's sections: left out"
            self.verdicts[position] = (False, why)
        elif sent is not None and c.url not in rules.pins:
            self.verdicts[position] = (False, f"sent in edition {sent}: left out")
        elif pinned_by is not None:
            self.pinned.add(position)
            pick = pinned_by == "an editor's pick"
            self.verdicts[position] = (
                True,
                f"pinned: {pinned_by}" if pick else f"pinned by {pinned_by}",
            )
            if sent is not None:
                self.notes[position] = f"sent in edition {sent}: kept, as it is pinned"
        self.urls.setdefault(c.url, c.title)

    def take_pins(self, scored: Sequence[Ranked]) -> None:
        for position in sorted(self.pinned):
            self._count_in(scored[position - 1].candidate)

    def take_section_minimums(self, scored: Sequence[Ranked]) -> None:
        """Step 3: each section's best articles up to `per_section_min`, best first."""
        if self.rules.per_section_min <= 0:
            return
        for position, ranked in enumerate(scored, start=1):
            if self.count >= self.rules.max_items:
                return
            c = ranked.candidate
            if position in self.verdicts or self.sections[c.section or ""] >= (
                self.rules.per_section_min
            ):
                continue
            if self._author_full(c):
                continue
            self._try(position, c, "chosen for the section minimum")

    def take_the_rest(self, scored: Sequence[Ranked]) -> None:
        """Step 4: by score, within the section, author and edition limits."""
        rules = self.rules
        for position, ranked in enumerate(scored, start=1):
            if position in self.verdicts:
                continue
            c = ranked.candidate
            section = c.section or ""
            held, limit = self.sections[section], rules.per_section
            if held >= limit:
                why = f"section quota {section or '(none)'} {held} of {limit}: left out"
            elif self._author_full(c):
                most = rules.max_per_author
                why = f"author quota {c.author} {most} of {most}: left out"
            elif self.count >= rules.max_items:
                why = f"below the cut: rank {position} of {self.total}"
            else:
                self._try(position, c, "chosen")
                continue
            self.verdicts[position] = (False, why)

    def _author_full(self, c: Candidate) -> bool:
        limit = self.rules.max_per_author
        return limit is not None and bool(c.author) and self.authors[c.author or ""] >= limit

    def _try(self, position: int, c: Candidate, why: str) -> None:
        """In, unless its headline repeats one already in (then out for good)."""
        words = title_words(c.title)
        twin = self._twin(words)
        if twin is not None:
            self.verdicts[position] = (False, f"near-duplicate of '{twin}': left out")
            return
        section = c.section or ""
        self._count_in(c, words)
        self.verdicts[position] = (
            True,
            f"{why}: rank {position} of {self.total}; section {section or '(none)'} "
            f"article {self.sections[section]} of at most {self.rules.per_section}",
        )

    def _twin(self, words: frozenset[str]) -> str | None:
        if len(words) < MIN_TITLE_WORDS:
            return None
        for other, title in self.headlines:
            common = len(words & other)
            if common and common / (len(words) + len(other) - common) >= (
                self.rules.title_similarity
            ):
                return title
        return None

    def _count_in(self, c: Candidate, words: frozenset[str] | None = None) -> None:
        self.count += 1
        self.sections[c.section or ""] += 1
        if c.author:
            self.authors[c.author] += 1
        words = title_words(c.title) if words is None else words
        if len(words) >= MIN_TITLE_WORDS:
            self.headlines.append((words, c.title))

    def outcomes(self, scored: Sequence[Ranked]) -> list[Ranked]:
        """Every candidate with its verdict; the lead marked (see the module docstring)."""
        lead = self._lead(scored)
        out = []
        for position, ranked in enumerate(scored, start=1):
            chosen, verdict = self.verdicts[position]
            reasons = [*ranked.reasons, verdict]
            if position in self.notes:
                reasons.append(self.notes[position])
            if position == lead[0]:
                reasons.append(lead[1])
            out.append(
                Ranked(
                    ranked.candidate,
                    ranked.score,
                    tuple(reasons),
                    chosen=chosen,
                    rank=position,
                    pinned=position in self.pinned,
                    lead=position == lead[0],
                )
            )
        return out

    def _lead(self, scored: Sequence[Ranked]) -> tuple[int, str]:
        chosen = [p for p, (is_in, _) in sorted(self.verdicts.items()) if is_in]
        if self.rules.lead is not None:
            url, who = self.rules.lead
            pinned = next((p for p in chosen if scored[p - 1].candidate.url == url), None)
            if pinned is not None:
                return pinned, f"lead story: chosen by {who}"
        return (chosen[0], "lead story: the highest score") if chosen else (0, "")


def _reading_order(outcomes: Sequence[Ranked], rules: RankRules) -> list[Ranked]:
    """Lead first; then section by section in the configured order, best first in each."""
    chosen = [r for r in outcomes if r.chosen]
    lead_section = next((r.candidate.section for r in chosen if r.lead), None)

    def key(r: Ranked) -> tuple[int, int, int, int]:
        section = r.candidate.section
        order = rules.sections.index(section) if section in rules.sections else len(rules.sections)
        return (section != lead_section, order, not r.lead, r.rank)

    return sorted(chosen, key=key)
