"""Which candidates are the same article: canonical URL first, GUID second, headline third.

- The canonical URL lower-cases scheme and host, drops default ports, fragments, tracking
  parameters (utm_*, fbclid, gclid, ...) and a trailing slash, and sorts the query.
- A GUID identifies an article only within its feed unless it is itself a URI (http:, tag:,
  urn:): two feeds that both number their items "1", "2", ... must not merge.
- Headlines match when their word sets (typography, accents, case, punctuation and possessive
  's folded, stop words dropped: digest.gather.titles) overlap by at least `similarity`
  (Jaccard). Headlines with fewer than three words never match on wording alone ("Editorial",
  "Letters"), nor do copies published more than a week apart.
- Merging keeps the richest fields of each copy (the longer excerpt, any image, any author, the
  earliest date) and remembers the other copies' URLs as aliases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from digest.gather.candidate import Candidate
from digest.gather.titles import STOP_WORDS, similarity, title_words

__all__ = ["STOP_WORDS", "similarity", "title_words"]  # shared with rank via gather.titles

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid",
        "igshid", "yclid", "twclid", "ttclid", "li_fat_id", "_hsenc", "_hsmi", "__hssc",
        "__hstc", "__hsfp", "hsctatracking", "ref_src", "ref_url", "cmpid", "ocid", "smid",
        "s_cid", "_ga", "_gl", "oly_anon_id", "oly_enc_id", "vero_id", "mkt_tok", "wt.mc_id",
        "rss", "spm",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_")
DEFAULT_PORTS = {"http": 80, "https": 443}
MIN_TITLE_WORDS = 3
MAX_APART = timedelta(days=7)
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"


# https://host.example/plain/path: nothing to lower-case, unquote, quote or drop. For these,
# canonical_url's full procedure only trims a trailing slash (tested against it).
_SIMPLE_URL = re.compile(r"(https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*)(/[A-Za-z0-9._~/-]*)?")
_GLOBAL_GUID = re.compile(r"^(https?|tag|urn):", re.I)


@lru_cache(maxsize=65536)
def canonical_url(url: str) -> str:
    """Two URLs for one article map to one string (see the module docstring)."""
    simple = _SIMPLE_URL.fullmatch(url)
    if simple:
        path = simple.group(2) or "/"
        return simple.group(1) + (path.rstrip("/") or "/")
    return _canonical(url)


def _canonical(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    path = quote(unquote(parts.path or "/"), safe=_SAFE_PATH) or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def _is_tracking(key: str) -> bool:
    low = key.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def url_key(url: str) -> str:
    """The canonical URL without its scheme: http and https copies are one article."""
    canonical = canonical_url(url)
    return canonical.split("://", 1)[-1]


def guid_key(candidate: Candidate) -> str | None:
    """A GUID that is a URI is global; any other GUID only means something inside its feed."""
    guid = candidate.guid
    if not guid:
        return None
    if _GLOBAL_GUID.match(guid):
        return guid
    return f"{candidate.source_url or ''}#{guid}"


def richness(candidate: Candidate) -> int:
    filled = (
        candidate.summary,
        candidate.author,
        candidate.image_url,
        candidate.published_at,
        candidate.section,
    )
    return sum(bool(v) for v in filled) * 1000 + min(len(candidate.summary), 999)


def merge(keep: Candidate, other: Candidate) -> Candidate:
    """One article from two copies: the first-seen URL, title and section; the richest rest."""
    rich, poor = (other, keep) if richness(other) > richness(keep) else (keep, other)
    earliest = min(
        (c for c in (keep, other) if c.published_at is not None),
        key=lambda c: c.published_at,  # type: ignore[arg-type,return-value]
        default=keep,
    )
    aliases = dict.fromkeys((*keep.aliases, other.url, *other.aliases))
    aliases.pop(keep.url, None)
    return keep.with_(
        title=keep.title or other.title,
        summary=max((keep.summary, other.summary), key=len),
        author=rich.author or poor.author,
        image_url=rich.image_url or poor.image_url,
        section=keep.section or other.section,
        published_at=earliest.published_at,
        date_flag=earliest.date_flag,
        guid=keep.guid or other.guid,
        is_pick=keep.is_pick or other.is_pick,
        pick_note=keep.pick_note or other.pick_note,
        aliases=tuple(aliases),
    )


class _TitleIndex:
    """Inverted index word → article positions, so finding a similar headline is not O(n²)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.words: dict[int, frozenset[str]] = {}
        self.postings: dict[str, list[int]] = {}
        self.last: tuple[str, frozenset[str]] = ("", frozenset())  # find()'s, for add()

    def find(self, candidate: Candidate, merged: list[Candidate]) -> int | None:
        """The most similar earlier headline at or above the threshold, close in time.

        Prefix filter: Jaccard >= t needs |A & B| >= t|A|, so B must contain one of any
        |A| - ceil(t|A|) + 1 words of A. Looking only at the postings of A's rarest words
        keeps this fast when common words have thousands of postings.
        """
        words = title_words(candidate.title)
        self.last = (candidate.title, words)
        if len(words) < MIN_TITLE_WORDS:
            return None
        need = math.ceil(self.threshold * len(words) - 1e-9)
        rarest = sorted(words, key=lambda w: len(self.postings.get(w, ())))
        seen: set[int] = set()
        best, best_score = None, self.threshold
        for word in rarest[: len(words) - need + 1]:
            for pos in self.postings.get(word, ()):
                if pos in seen:
                    continue
                seen.add(pos)
                other = self.words[pos]
                common = len(words & other)
                score = common / (len(words) + len(other) - common)
                better = best is None or score > best_score or (score == best_score and pos < best)
                if score >= best_score and better and _close_in_time(candidate, merged[pos]):
                    best, best_score = pos, score
        return best

    def add(self, pos: int, title: str) -> None:
        if pos in self.words:
            return
        words = self.last[1] if title == self.last[0] else title_words(title)
        if len(words) < MIN_TITLE_WORDS:
            return
        self.words[pos] = words
        for word in words:
            self.postings.setdefault(word, []).append(pos)


def _canonical_copy(candidate: Candidate) -> Candidate:
    """The candidate with its canonical URL (itself when that is its URL: no copy needed)."""
    url = canonical_url(candidate.url)
    return candidate if url == candidate.url else candidate.with_(url=url)


def _close_in_time(a: Candidate, b: Candidate) -> bool:
    if a.published_at is None or b.published_at is None:
        return True
    return abs(a.published_at - b.published_at) <= MAX_APART


def deduplicate(candidates: Iterable[Candidate], similarity: float = 0.8) -> list[Candidate]:
    """One candidate per article, in first-seen order; merged on URL, GUID or headline."""
    merged: list[Candidate] = []
    index: dict[str, int] = {}
    titles = _TitleIndex(similarity)
    for candidate in candidates:
        keys = [f"url:{url_key(u)}" for u in (candidate.url, *candidate.aliases)]
        guid = guid_key(candidate)
        if guid:
            keys.append(f"guid:{guid}")
        hit = next((index[k] for k in keys if k in index), None)
        if hit is None:
            hit = titles.find(candidate, merged)
        if hit is None:
            hit = len(merged)
            merged.append(_canonical_copy(candidate))
        else:
            merged[hit] = merge(merged[hit], _canonical_copy(candidate))
        for key in keys:
            index.setdefault(key, hit)
        titles.add(hit, merged[hit].title)
    return merged
