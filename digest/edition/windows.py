"""Weeks: the window of articles an edition built at a moment gathers, and the weeks a person
names (`--week 2026-W47`). Apart from digest.edition.options so that listing a week's articles
loads neither the gatherer, the ranking nor the renderer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from digest.config import Settings


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
