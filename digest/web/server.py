"""How `digest serve` runs the app under uvicorn: its options, and a header timeout.

uvicorn times out an idle keep-alive connection, but not one that is sending its headers: a
client that opens a connection and sends a byte of its request line every few seconds (or
nothing at all) holds that connection for ever, and a few thousand of them exhaust the process
(slowloris). `HeaderTimeoutProtocol` closes a connection whose request headers are not
complete `header_timeout_s` after it was opened or after the request's first byte arrived.
The body has its own time limit, in digest/web/bodies.py (a 408 the app can answer in full).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from digest.config import Settings

# uvicorn's default: an idle keep-alive connection is closed after this many seconds.
KEEP_ALIVE_S = 5


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers."""

    header_timeout_s: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is dropped too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(header_timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class uvicorn instantiates per connection, with this deadline."""
    return type(
        "DigestHttpProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s}
    )


def options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config's keyword arguments for the app (everything but where it listens)."""
    web = settings.web
    return {
        "http": protocol(web.header_timeout_s),
        "timeout_keep_alive": KEEP_ALIVE_S,
        "proxy_headers": bool(web.trusted_proxies),
        "forwarded_allow_ips": ",".join(web.trusted_proxies) or None,
        "server_header": False,
    }
