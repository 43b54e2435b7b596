"""The value that flows from gather to rank: one candidate article, already sanitised."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    """A candidate article for an edition.

    Everything here has been sanitised: `title`, `summary` and `author` are plain text,
    `url` and `image_url` are absolute http(s) URLs. Templates still escape all of it.
    """

    url: str
    title: str
    summary: str = ""
    author: str | None = None
    image_url: str | None = None
    section: str | None = None
    published_at: datetime | None = None
    guid: str | None = None
    source_url: str | None = None
    # "missing": no date in the source (first_seen stands in); "future": dated after `now`.
    date_flag: str | None = None
    is_pick: bool = False
    pick_note: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # URLs of near-duplicates merged into this one (other sources' copies of the same story).
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def content_hash(self) -> str:
        """Changes when anything a reader would see changes: a re-fetch updates, not duplicates."""
        parts = [
            self.title,
            self.summary,
            self.author or "",
            self.image_url or "",
            self.section or "",
            self.published_at.isoformat() if self.published_at else "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def with_(self, **changes: object) -> Candidate:
        return replace(self, **changes)  # type: ignore[arg-type]
