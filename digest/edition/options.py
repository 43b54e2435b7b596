"""Settings -> the plain values the pure stages take (gather, rank, render know no Settings)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from digest.branding import branding as branding  # where the editions take it from
from digest.config import Settings
from digest.edition.windows import edition_window as edition_window
from digest.edition.windows import named_window as named_window
from digest.edition.windows import week_window as week_window

if TYPE_CHECKING:  # imported when gathering or ranking: a send needs only branding from here
    from digest.gather import GatherOptions, SourceSpec
    from digest.rank import RankRules


def source_specs(settings: Settings) -> list[SourceSpec]:
    from digest.gather import SourceSpec

    return [
        SourceSpec(
            url=settings.source_location(s),
            kind=s.kind,
            section=s.section,
            name=s.name,
            link_pattern=s.link_pattern,
            max_pages=s.max_pages,
            timeout_s=s.timeout_s,
        )
        for s in settings.sources
    ]


def gather_options(
    settings: Settings, since: datetime | None = None, known: frozenset[str] = frozenset()
) -> GatherOptions:
    from digest.gather import GatherOptions, Limits

    g, nl = settings.gather, settings.newsletter
    return GatherOptions(
        limits=Limits(
            timeout_s=g.timeout_s,
            max_bytes=g.max_bytes,
            max_redirects=g.max_redirects,
            user_agent=g.user_agent,
            concurrency=g.concurrency,
        ),
        excerpt_words=nl.excerpt_words,
        sections=tuple(nl.sections),
        max_items=g.max_items_per_source,
        max_pages=g.max_pages,
        similarity=g.title_similarity,
        conditional_get=g.conditional_get,
        since=since,
        known_urls=known,
    )


def rank_rules(settings: Settings) -> RankRules:
    """The configured signals and limits; the week's inputs are added by compose()."""
    from digest.rank import RankRules

    nl, rk = settings.newsletter, settings.rank
    return RankRules(
        max_items=nl.max_items,
        per_section=nl.per_section,
        per_section_min=rk.per_section_min,
        max_per_author=rk.max_per_author,
        half_life_hours=rk.half_life_hours,
        pick_bonus=rk.pick_bonus,
        section_weights=dict(rk.section_weights),
        popularity_weight=rk.popularity_weight,
        clicks_weight=rk.clicks_weight,
        image_bonus=rk.image_bonus,
        excerpt_bonus=rk.excerpt_bonus,
        title_similarity=settings.gather.title_similarity,
        sections=tuple(nl.sections),
    )
