"""A week's ranking with everything a build would feed it: the stored candidates of the window,
the configured signals, popularity and clicks, what earlier editions sent, and the staff's pins,
drops and lead. `compose()` (build and every edit) and `digest rank` both call `rank_week`, so
the reasons `digest rank` prints are the reasons the edition's items carry. Read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import signals
from digest.edition.articles import window_candidates
from digest.edition.options import rank_rules
from digest.gather.candidate import Candidate
from digest.rank import Ranked, RankResult, RankRules, rank
from digest.store.models import EditionEdit


@dataclass(frozen=True)
class WeekRanking:
    result: RankResult
    # Candidates of the week that no approved, sending or sent edition carries.
    in_window: int
    # Staff edits that no longer apply (their article is not among the week's), one line each.
    stale: list[str]


def article_id(candidate: Candidate) -> int:
    return int(candidate.extra["article_id"])


def rank_week(
    session: Session,
    settings: Settings,
    start: datetime,
    cutoff: datetime,
    edits: Sequence[EditionEdit] = (),
    own_id: int | None = None,
) -> WeekRanking:
    """Rank the stored candidates of [start, cutoff) as a build of edition `own_id` would."""
    week = window_candidates(session, start, cutoff, settings.gather.title_similarity)
    sent = signals.sent_editions(session, own_id)
    rules, stale = week_rules(session, settings, week, edits, sent)
    in_window = sum(1 for c in week if article_id(c) not in sent)
    return WeekRanking(rank(week, cutoff, rules), in_window, stale)


def week_rules(
    session: Session,
    settings: Settings,
    week: Sequence[Candidate],
    edits: Sequence[EditionEdit],
    sent: dict[int, int],
) -> tuple[RankRules, list[str]]:
    """The configured rules plus this week's inputs, keyed by candidate URL."""
    urls = {article_id(c): c.url for c in week}
    pins, drops, lead = staff_choices(edits)
    stale = [
        f"pin of article {a} no longer applies: it is not among this week's articles (outside "
        "the window, or carried by another edition)"
        for a in pins
        if a not in urls or (a in sent)
    ]
    lead_url = urls.get(lead[0]) if lead is not None else None
    rules = replace(
        rank_rules(settings),
        popularity=signals.popularity(settings, week),
        clicks=signals.by_candidate(week, signals.click_counts(session)),
        sent_in={urls[a]: e for a, e in sent.items() if a in urls},
        pins={urls[a]: who for a, who in pins.items() if a in urls and a not in sent},
        drops={urls[a]: who for a, who in drops.items() if a in urls},
        lead=(lead_url, lead[1]) if lead is not None and lead_url is not None else None,
    )
    return rules, stale


def staff_choices(
    edits: Sequence[EditionEdit],
) -> tuple[dict[int, str], dict[int, str], tuple[int, str] | None]:
    """Pins and drops (article id -> who; the last pin or drop of an article wins: a pin after a
    drop takes it back) and the lead (the last pin marked {"lead": true} still pinned)."""
    last: dict[int, EditionEdit] = {}
    lead: tuple[int, str] | None = None
    for e in edits:
        if e.kind in ("pin", "drop") and e.article_id is not None:
            last[e.article_id] = e
            if e.kind == "pin" and (e.value or {}).get("lead"):
                lead = (e.article_id, e.actor)
    pins = {a: e.actor for a, e in last.items() if e.kind == "pin"}
    drops = {a: e.actor for a, e in last.items() if e.kind == "drop"}
    return pins, drops, lead if lead is not None and lead[0] in pins else None


def candidate_json(r: Ranked) -> dict[str, object]:
    """One candidate's outcome as `digest rank --json` and the API print it."""
    c = r.candidate
    when: datetime | None = c.published_at
    return {
        "id": article_id(c),
        "rank": r.rank,
        "url": c.url,
        "title": c.title,
        "section": c.section,
        "author": c.author,
        "published_at": when.isoformat() if when else None,
        "score": r.score,
        "chosen": r.chosen,
        "pinned": r.pinned,
        "lead": r.lead,
        "reasons": list(r.reasons),
    }
