"""The ranking's inputs that live outside the candidates: read here, handed to the pure
`digest.rank` as plain values keyed by candidate URL (I/O stays at the edges).

- popularity: `[rank] popularity_file`, a CSV of `url,score` rows (page views, shares: any
  number >= 0). An optional first row `url,score` is a header; blank lines are skipped; a URL
  listed twice adds up. A bad row refuses the whole file (ConfigError, exit 2) naming the file
  and line: a half-read file would rank the week on numbers nobody chose.
- clicks: what our own past editions recorded per link (link_clicks), summed over editions.
- sent: the approved, sending or sent edition that carries an article.
URLs are matched by url_key (canonical, http and https alike), the article's merged copies too.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import ConfigError
from digest.gather.candidate import Candidate
from digest.gather.identity import url_key
from digest.store.models import LOCKED_STATUSES, Edition, EditionItem, LinkClick


def read_popularity(path: Path) -> dict[str, float]:
    """url_key -> summed score, from the CSV file (see the module docstring)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(enumerate(csv.reader(fh), start=1))
    except FileNotFoundError:
        raise ConfigError(f"[rank] popularity_file: {path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"[rank] popularity_file: {path}: cannot read: {exc}") from None
    scores: dict[str, float] = {}
    for line, row in rows:
        if not row or not "".join(row).strip():
            continue
        if line == 1 and [cell.strip().lower() for cell in row] == ["url", "score"]:
            continue
        url, value = _row(path, line, row)
        key = url_key(url)
        scores[key] = scores.get(key, 0.0) + value
    return scores


def _row(path: Path, line: int, row: Sequence[str]) -> tuple[str, float]:
    where = f"{path}:{line}"
    if len(row) != 2:
        raise ConfigError(f"{where}: expected 2 columns (url,score), found {len(row)}")
    url, raw = row[0].strip(), row[1].strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{where}: score {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: score {raw!r} must be a number >= 0")
    return url, value


def click_counts(session: Session) -> dict[str, float]:
    """url_key -> clicks every edition recorded on that link."""
    totals: dict[str, float] = {}
    rows = session.execute(
        select(LinkClick.url, func.sum(LinkClick.clicks)).group_by(LinkClick.url)
    )
    for url, clicks in rows:
        key = url_key(url)
        totals[key] = totals.get(key, 0.0) + float(clicks or 0)
    return totals


def sent_editions(session: Session, own_id: int | None = None) -> dict[int, int]:
    """article id -> the (earliest) approved, sending or sent edition that carries it."""
    query = (
        select(EditionItem.article_id, func.min(Edition.id))
        .join(Edition, Edition.id == EditionItem.edition_id)
        .where(Edition.status.in_(LOCKED_STATUSES))
        .group_by(EditionItem.article_id)
    )
    if own_id is not None:
        query = query.where(Edition.id != own_id)
    return {article: edition for article, edition in session.execute(query)}


def by_candidate(candidates: Iterable[Candidate], values: Mapping[str, float]) -> dict[str, float]:
    """Candidate URL -> the value of its URL or of any copy merged into it (summed)."""
    out: dict[str, float] = {}
    for c in candidates:
        total = sum(values.get(url_key(u), 0.0) for u in dict.fromkeys((c.url, *c.aliases)))
        if total:
            out[c.url] = total
    return out


def popularity(settings: Settings, candidates: Sequence[Candidate]) -> dict[str, float]:
    """The week's popularity by candidate URL ({} when no popularity_file is configured)."""
    name = settings.rank.popularity_file
    if not name:
        return {}
    return by_candidate(candidates, read_popularity(settings.resolve_path(name)))
