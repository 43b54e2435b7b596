"""Which candidates are the same article: canonical URLs first, near-identical titles second."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.candidate import Candidate

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "ref_src",
        "cmpid",
    }
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no tracking parameters, no fragment,
    no trailing slash (except the root). Two URLs for one article map to one string."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def title_key(title: str) -> str:
    """Case, accents, punctuation and spacing removed: near-identical headlines collide."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", folded))


def richness(candidate: Candidate) -> int:
    return (
        sum(
            bool(v)
            for v in (
                candidate.summary,
                candidate.author,
                candidate.image_url,
                candidate.published_at,
                candidate.section,
            )
        )
        + len(candidate.summary) // 200
    )


def merge(keep: Candidate, other: Candidate) -> Candidate:
    """The richer candidate wins; its empty fields are filled from the other."""
    if richness(other) > richness(keep):
        keep, other = other, keep
    return keep.with_(
        summary=keep.summary or other.summary,
        author=keep.author or other.author,
        image_url=keep.image_url or other.image_url,
        section=keep.section or other.section,
        published_at=keep.published_at or other.published_at,
        guid=keep.guid or other.guid,
        is_pick=keep.is_pick or other.is_pick,
        pick_note=keep.pick_note or other.pick_note,
    )


def deduplicate(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per article, in first-seen order; merged on URL, GUID or title."""
    merged: list[Candidate] = []
    index: dict[tuple[str, str], int] = {}
    for candidate in candidates:
        keys = [("url", canonical_url(candidate.url)), ("title", title_key(candidate.title))]
        if candidate.guid:
            keys.append(("guid", candidate.guid))
        hit = next((index[k] for k in keys if k in index), None)
        if hit is None:
            hit = len(merged)
            merged.append(candidate.with_(url=canonical_url(candidate.url)))
        else:
            merged[hit] = merge(merged[hit], candidate)
        for key in keys:
            index.setdefault(key, hit)
    return merged
