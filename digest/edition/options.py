"""Settings -> the plain values the pure stages take (gather, rank, render know no Settings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.branding import branding as branding  # where the editions take it from
from digest.config import Settings
from digest.gather import GatherOptions, Limits, SourceSpec
from digest.rank import RankRules


def week_window(now: datetime, tz: ZoneInfo, days: int) -> tuple[datetime, datetime]:
    """The `days` calendar days before `now` in the publication's timezone (DST-safe)."""
    local = now.astimezone(tz)
    start = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=tz)
    return start, now


def edition_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The window an edition built at `now` gathers from ([newsletter] window_days before it).
    `build` then starts it no earlier than the previous edition's cut-off; listings show it
    whole."""
    return week_window(now, settings.publication.tz, settings.newsletter.window_days)


def named_window(value: str | None, settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The window a week's name stands for, read in the publication's timezone: an ISO week
    2026-W47 (Monday to Monday), a day 2026-11-20 (the window ending as that day ends) or a
    moment 2026-11-20T09:00 (the window a build then would gather); None is the window ending
    `now`. A name it cannot read raises ValueError, naming it and the forms it takes."""
    if value is None:
        return edition_window(settings, now)
    tz = settings.publication.tz
    try:
        if "-W" in value.upper():
            monday = datetime.strptime(value.upper() + "-1", "%G-W%V-%u").replace(tzinfo=tz)
            return monday.astimezone(UTC), (monday + timedelta(days=7)).astimezone(UTC)
        if "T" not in value.upper():
            day_end = datetime.fromisoformat(value).replace(tzinfo=tz) + timedelta(days=1)
            return edition_window(settings, day_end.astimezone(UTC))
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return edition_window(settings, moment.astimezone(UTC))
    except ValueError:
        raise ValueError(f"{value!r}: expected 2026-W47, 2026-11-20 or 2026-11-20T09:00") from None


def source_specs(settings: Settings) -> list[SourceSpec]:
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
