"""Five-field crontab expressions, read the way cron reads them.

`[schedule] cron` is written by people who know crontab(5); APScheduler 3 reads the same text
differently in two ways that would send a newsletter on the wrong day: its day-of-week numbers
start at 0 = Monday (cron: 0 and 7 = Sunday), and it requires day-of-month AND day-of-week to
match where cron accepts either. So the expression is parsed here, by cron's rules, into the
explicit set of values of each field; the scheduler hands APScheduler those sets, by name, and
nothing is left to interpretation. Pure and cheap: the settings validate with it at load time
(without importing APScheduler, which costs every command a tenth of a second).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# English names whatever the locale (calendar.month_abbr would follow LC_TIME).
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: n for n, name in enumerate(MONTH_NAMES, start=1)}
# The longest each month can be (February: 29, in a leap year).
_LONGEST = dict(zip(range(1, 13), (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), strict=True))
# crontab(5): 0 and 7 are Sunday.
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


class CrontabError(ValueError):
    """The expression is not a five-field crontab line cron would accept."""


@dataclass(frozen=True)
class Crontab:
    """Each field's values as a set; `day_of_week` in cron's numbers (0 = Sunday ... 6)."""

    expression: str
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]

    def apscheduler_fields(self) -> dict[str, str]:
        """The keyword arguments of APScheduler's CronTrigger for the same moments: explicit
        lists (day names for the days of the week, so its Monday-first numbers never apply)."""
        return {
            "minute": _listed(self.minute, 60),
            "hour": _listed(self.hour, 24),
            "day": _listed(self.day_of_month, 31),
            "month": _listed(self.month, 12),
            "day_of_week": (
                "*"
                if len(self.day_of_week) == 7
                else ",".join(DAY_NAMES[d] for d in sorted(self.day_of_week))
            ),
        }


def parse(expression: str) -> Crontab:
    """Parse `minute hour day-of-month month day-of-week`; CrontabError says what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise CrontabError(
            f"{expression!r} has {len(fields)} field(s); a crontab line has 5: minute hour "
            'day-of-month month day-of-week, e.g. "0 7 * * mon"'
        )
    values = [_field(i, text.lower()) for i, text in enumerate(fields)]
    dow = frozenset(d % 7 for d in values[4])  # Sunday is 0 or 7: one day
    tab = Crontab(expression, values[0], values[1], values[2], values[3], dow)
    _check_days(tab)
    return tab


def _field(index: int, text: str) -> frozenset[int]:
    low, high = _BOUNDS[index]
    found: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise CrontabError(f"{FIELD_NAMES[index]} {text!r}: cannot read {item!r}")
        first, last = _range(index, match.group("range"), low, high)
        step = int(match.group("step") or 1)
        if step < 1:
            raise CrontabError(f"{FIELD_NAMES[index]} {text!r}: a step must be at least 1")
        single = match.group("range") != "*" and "-" not in match.group("range")
        if match.group("step") and single:
            last = high  # "5/15" is "5-59/15", as in Vixie cron
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _range(index: int, text: str, low: int, high: int) -> tuple[int, int]:
    if text == "*":
        return low, high
    parts = [_value(index, part, low, high) for part in text.split("-")]
    first, last = parts[0], parts[-1]
    if first > last:
        raise CrontabError(
            f"{FIELD_NAMES[index]} {text!r}: a range runs from low to high ({first} > {last})"
        )
    return first, last


def _value(index: int, text: str, low: int, high: int) -> int:
    names = _MONTHS if index == 3 else _DAYS if index == 4 else {}
    if text in names:
        return names[text]
    if not text.isdigit():
        known = f" (or a name: {', '.join(names)})" if names else ""
        raise CrontabError(f"{FIELD_NAMES[index]} {text!r} is not a number{known}")
    value = int(text)
    if not low <= value <= high:
        raise CrontabError(f"{FIELD_NAMES[index]} {value} is outside {low}-{high}")
    return value


def _check_days(tab: Crontab) -> None:
    if len(tab.day_of_month) < 31 and len(tab.day_of_week) < 7:
        raise CrontabError(
            f"{tab.expression!r} restricts both the day of the month and the day of the week; "
            "cron would run on either, APScheduler only on both: use one of them (put * in "
            "the other)"
        )
    if not any(d <= _LONGEST[m] for m in tab.month for d in tab.day_of_month):
        raise CrontabError(f"{tab.expression!r} never happens: no such day in those months")


def _listed(values: frozenset[int], size: int) -> str:
    return "*" if len(values) == size else ",".join(str(v) for v in sorted(values))
