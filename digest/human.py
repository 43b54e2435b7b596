"""How a person reads times and counts: every table and message uses these, so that a time is
always in the publication's timezone, to the minute, with its zone named, and "1 section" is
never "1 sections". JSON output keeps ISO 8601 (machines read it); this module is for people.
"""

from __future__ import annotations

from datetime import datetime, tzinfo


def moment(when: datetime | None, tz: tzinfo, *, missing: str = "-") -> str:
    """2026-11-20 09:00 EST: to the minute, in `tz`, with the zone's abbreviation."""
    if when is None:
        return missing
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local:%Z}".rstrip()


def day(when: datetime | None, tz: tzinfo, *, missing: str = "-") -> str:
    """Fri 20 Nov 09:00: a time within the week a table is about."""
    if when is None:
        return missing
    return when.astimezone(tz).strftime("%a %d %b %H:%M")


def date(when: datetime | None, tz: tzinfo, *, missing: str = "-") -> str:
    """2026-11-20: the day, in `tz` (a column of sign-up dates)."""
    return missing if when is None else f"{when.astimezone(tz):%Y-%m-%d}"


def span(start: datetime, end: datetime, tz: tzinfo) -> str:
    """2026-11-13 09:00 → 2026-11-20 09:00 EST (the zone once, at the end)."""
    first, last = start.astimezone(tz), end.astimezone(tz)
    return f"{first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} {last:%Z}".rstrip()


def parse_iso(text: str | None) -> datetime | None:
    """An ISO 8601 time from a JSON record ("...Z" included) back into a datetime."""
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """1 section, 2 sections, 1,000 recipients."""
    word = noun if count == 1 else (nouns or f"{noun}s")
    return f"{count:,} {word}"
