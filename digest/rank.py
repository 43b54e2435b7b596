"""Ranking: candidates in, an ordered selection out, with the reason for every score.

Pure. The score is recency (newer is better, half-life configurable) plus a bonus for editor
picks; the selection then honours a per-section quota and tries to give every section a place
before any section gets a second one, so one busy desk cannot fill the whole email.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.gather.candidate import Candidate


@dataclass(frozen=True)
class RankRules:
    max_items: int = 12
    per_section: int = 4
    half_life_hours: float = 72.0
    pick_bonus: float = 1.0
    sections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reasons: tuple[str, ...] = field(default=())


def score(candidate: Candidate, now: datetime, rules: RankRules) -> Ranked:
    when = candidate.published_at
    reasons = []
    if when is None:
        recency = 0.0
        reasons.append("no publication date: recency 0.00")
    else:
        age_h = max(0.0, (now - when).total_seconds() / 3600)
        recency = math.pow(0.5, age_h / rules.half_life_hours)
        reasons.append(f"published {age_h / 24:.1f} days ago: recency {recency:.2f}")
    total = recency
    if candidate.is_pick:
        total += rules.pick_bonus
        reasons.append(f"editor's pick: +{rules.pick_bonus:.2f}")
    return Ranked(candidate, round(total, 4), tuple(reasons))


def rank(candidates: Sequence[Candidate], now: datetime, rules: RankRules) -> list[Ranked]:
    """The edition's articles, best first, at most `max_items`, within the section quota."""
    known = set(rules.sections)
    eligible = [c for c in candidates if not known or (c.section in known)]
    scored = sorted(
        (score(c, now, rules) for c in eligible),
        key=lambda r: (-r.score, r.candidate.title.lower(), r.candidate.url),
    )
    chosen: list[Ranked] = []
    chosen_urls: set[str] = set()
    taken: Counter[str] = Counter()
    # Round 1 gives each section its best article; later rounds fill by score within the quota.
    for round_no in range(1, rules.per_section + 1):
        for ranked in scored:
            section = ranked.candidate.section or ""
            url = ranked.candidate.url
            if len(chosen) >= rules.max_items or url in chosen_urls or taken[section] >= round_no:
                continue
            taken[section] += 1
            chosen_urls.add(url)
            note = (
                f"section {section or '(none)'}: article {taken[section]} of at most "
                f"{rules.per_section}"
            )
            chosen.append(Ranked(ranked.candidate, ranked.score, (*ranked.reasons, note)))
    return sorted(chosen, key=lambda r: (_section_order(r, rules), -r.score))


def _section_order(ranked: Ranked, rules: RankRules) -> int:
    section = ranked.candidate.section
    return rules.sections.index(section) if section in rules.sections else len(rules.sections)
