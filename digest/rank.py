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
from datetime import datetime, timedelta
from typing import NamedTuple

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


class Ranked(NamedTuple):
    """One candidate's outcome: its score, whether it is in, its place in score order (1 is
    the best of the week) and every reason, scoring first, then the selection's verdict.
    A named tuple, not a frozen dataclass: as immutable, and a ranking builds 10,000 of them
    several times faster."""

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
    total, reasons = _Scorer(now, rules, week or norms([candidate], rules))(candidate)
    return Ranked(candidate, total, reasons, chosen=False)


class _Scorer:
    """score() for a whole week: every constant of the reasons formatted once, not per
    candidate (10,000 candidates are scored in a few tens of milliseconds)."""

    def __init__(self, now: datetime, rules: RankRules, week: Norms) -> None:
        self.now, self.rules, self.week = now, rules, week
        self.weights = {s: (w, _num(w)) for s, w in rules.section_weights.items()}
        self.per_hour = math.log(0.5) / rules.half_life_hours
        self.bonuses = [
            (attr, bonus, f"{label}: +{bonus:.2f}")
            for attr, label, bonus in (
                ("image_url", "has an image", rules.image_bonus),
                ("summary", "has an excerpt", rules.excerpt_bonus),
                ("is_pick", "editor's pick", rules.pick_bonus),
            )
            if bonus
        ]
        self.signals = [
            (values, top, factor, label)
            for values, top, factor, label in (
                (rules.popularity, week.popularity_max, rules.popularity_weight, "popularity"),
                (rules.clicks, week.clicks_max, rules.clicks_weight, "clicks in past editions"),
            )
            if values and top > 0 and factor
        ]

    def __call__(self, c: Candidate) -> tuple[float, tuple[str, ...]]:
        weight, shown = self.weights.get(c.section or "", (1.0, "1.0"))
        when = c.published_at
        if when is None:
            total = 0.0
            reasons = [f"no publication date: recency 0.00 x section weight {shown}"]
        else:
            age_h = (self.now - when) / _HOUR
            if age_h < 0:  # dated after the cut-off: as new as can be
                age_h = 0.0
            recency = math.exp(age_h * self.per_hour)
            total = recency * weight
            reasons = [
                f"published {age_h / 24:.1f} days ago: recency {recency:.2f} x section weight "
                f"{shown}"
            ]
        for values, top, factor, label in self.signals:
            value = values.get(c.url, 0.0)
            if value > 0:
                share = value / top
                total += share * factor
                reasons.append(f"{label} {share:.2f} x weight {factor:g}: +{share * factor:.2f}")
        for attr, bonus, reason in self.bonuses:
            if getattr(c, attr):
                total += bonus
                reasons.append(reason)
        return round(total, 4), tuple(reasons)


_HOUR = timedelta(hours=1)


def _num(value: float) -> str:
    """1.0, 0.5, 1.25: a weight as staff wrote it in digest.toml."""
    return f"{value:.1f}" if value == round(value, 1) else f"{value:g}"


def rank(candidates: Sequence[Candidate], now: datetime, rules: RankRules) -> RankResult:
    """Score every candidate, choose the edition's articles, explain every outcome."""
    scorer = _Scorer(now, rules, norms(candidates, rules))
    entries: list[_Entry] = []
    for i, c in enumerate(candidates):
        total, reasons = scorer(c)
        entries.append((-total, c.title.lower(), c.url, i, c, reasons))
    entries.sort()  # best first; ties by headline, then URL (`i` only keeps candidates apart)
    ordered = [e[4] for e in entries]
    picking = _Selection(rules, len(ordered))
    for position, c in enumerate(ordered, start=1):
        picking.screen(position, c)
    picking.take_pins(ordered)
    picking.take_section_minimums(ordered)
    picking.take_the_rest(ordered)
    outcomes = picking.outcomes(entries)
    return RankResult(tuple(outcomes), tuple(_reading_order(outcomes, rules)))


# (-score, lower-case headline, URL, input index, candidate, scoring reasons): sorts best first.
_Entry = tuple[float, str, str, int, Candidate, tuple[str, ...]]


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

    def screen(self, position: int, c: Candidate) -> None:
        """Step 1 (out for good), and marking the pins (in, whatever else holds)."""
        rules = self.rules
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

    def take_pins(self, ordered: Sequence[Candidate]) -> None:
        for position in sorted(self.pinned):
            self._count_in(ordered[position - 1])

    def take_section_minimums(self, ordered: Sequence[Candidate]) -> None:
        """Step 3: each section's best articles up to `per_section_min`, best first."""
        if self.rules.per_section_min <= 0:
            return
        for position, c in enumerate(ordered, start=1):
            if self.count >= self.rules.max_items:
                return
            if position in self.verdicts or self.sections[c.section or ""] >= (
                self.rules.per_section_min
            ):
                continue
            if self._author_full(c):
                continue
            self._try(position, c, "chosen for the section minimum")

    def take_the_rest(self, ordered: Sequence[Candidate]) -> None:
        """Step 4: by score, within the section, author and edition limits. Once a section or
        an author is full it stays full, so its reason is formatted once."""
        rules, verdicts = self.rules, self.verdicts
        full: dict[str, tuple[bool, str]] = {}
        cut = f" of {self.total}"
        for position, c in enumerate(ordered, start=1):
            if position in verdicts:
                continue
            section = c.section or ""
            known = full.get(section) or (c.author and full.get("author:" + c.author))
            if known:
                verdicts[position] = known
            elif self.sections[section] >= rules.per_section:
                held = self.sections[section]
                why = f"section quota {section or '(none)'} {held} of {rules.per_section}: left out"
                verdicts[position] = full[section] = (False, why)
            elif self._author_full(c):
                most = rules.max_per_author
                why = f"author quota {c.author} {most} of {most}: left out"
                verdicts[position] = full["author:" + (c.author or "")] = (False, why)
            elif self.count >= rules.max_items:
                verdicts[position] = (False, "below the cut: rank " + str(position) + cut)
            else:
                self._try(position, c, "chosen")

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

    def outcomes(self, entries: Sequence[_Entry]) -> list[Ranked]:
        """Every candidate with its verdict; the lead marked (see the module docstring)."""
        lead = self._lead([e[4] for e in entries])
        out = []
        verdicts, notes, pinned = self.verdicts, self.notes, self.pinned
        for position, (negative, _, _, _, candidate, scoring) in enumerate(entries, start=1):
            chosen, verdict = verdicts[position]
            reasons = (*scoring, verdict)
            if position in notes:
                reasons += (notes[position],)
            is_lead = position == lead[0]
            if is_lead:
                reasons += (lead[1],)
            out.append(
                Ranked(
                    candidate,
                    -negative,
                    reasons,
                    chosen,
                    position,
                    position in pinned,
                    is_lead,
                )
            )
        return out

    def _lead(self, ordered: Sequence[Candidate]) -> tuple[int, str]:
        chosen = [p for p, (is_in, _) in sorted(self.verdicts.items()) if is_in]
        if self.rules.lead is not None:
            url, who = self.rules.lead
            pinned = next((p for p in chosen if ordered[p - 1].url == url), None)
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
