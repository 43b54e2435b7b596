"""Small builders for gathering tests: feeds and pages as bytes, settings with chosen sources,
and an event loop on a virtual clock for tests about timeouts."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

from digest.config import GatherSettings, Settings, SourceSettings

SITE = "https://desk.example"

T = TypeVar("T")


def rss(*items: tuple[str, str, datetime | None, str]) -> bytes:
    """RSS 2.0 with (slug, title, published, summary) items."""
    body = "".join(
        f"<item><title>{title}</title><link>{SITE}/{slug}</link><guid>{SITE}/{slug}</guid>"
        + (f"<pubDate>{when:%a, %d %b %Y %H:%M:%S +0000}</pubDate>" if when else "")
        + f"<description>{summary}</description></item>"
        for slug, title, when, summary in items
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0">'
    return f"{head}<channel>{body}</channel></rss>".encode()


def article(
    slug: str, title: str, when: datetime, *, section: str = "Europe", host: str = SITE
) -> bytes:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title} | Desk</title>'
        f'<link rel="canonical" href="{host}/{slug}">'
        f'<meta property="og:title" content="{title}">'
        f'<meta property="og:description" content="About {title.lower()}.">'
        f'<meta property="article:published_time" content="{when.isoformat()}">'
        f'<meta property="article:section" content="{section}">'
        "</head><body><article><p>Text</p></article></body></html>"
    ).encode()


def listing(*hrefs: str) -> bytes:
    links = "".join(f'<article><a href="{h}">{h}</a></article>' for h in hrefs)
    nav = "<nav><a href='/about'>About</a></nav>"
    return f"<html><body>{nav}<main>{links}</main></body></html>".encode()


def configured(settings: Settings, sources: list[dict[str, Any]], **gather: Any) -> Settings:
    """The demo settings with these sources, min_items 1 and optional [gather] changes."""
    return settings.model_copy(
        update={
            "sources": [SourceSettings(**s) for s in sources],
            "newsletter": settings.newsletter.model_copy(update={"min_items": 1}),
            "gather": GatherSettings(**gather),
        }
    )


class _JumpingSelector(selectors.DefaultSelector):
    """Where the loop would block until its next timer, move the clock there instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            self.now += timeout
            timeout = 0
        return super().select(timeout)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock starts at 0 and jumps to the next timer whenever every task is
    waiting on one: sleeps and timeouts fire in the order real time would fire them, but take
    no time, so a busy machine cannot make a 1 s fetch late. Only for code that waits on timers
    alone (no sockets, no threads)."""

    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now


def run_on_virtual_clock(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)
