"""Keep-alive HTTP(S) connections to one API origin: one per thread that sends, reused for every
request that thread makes.

A send has up to [delivery] concurrency requests in flight per worker, each on a sender thread
of its own; a new TLS connection per request of 1000 recipients would cost a handshake (a round
trip or two, and CPU) every time. A connection idle for longer than `idle_s` is closed and opened
again before use, so a server's keep-alive timeout never closes it under a request.

What is safe to send again: a request that could not be written whole on a reused connection
(the server closed it while it was idle) never reached the server, and is written once more on a
new connection; a failure after the whole request was written may have reached it, and is raised
for the caller to judge (docs/design.md §3: such a batch is uncertain, or retried by policy).
Proxies from the environment (`https_proxy`, `no_proxy`) are honoured as urllib honours them,
through a CONNECT tunnel.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

IDLE_S = 10.0


class Unreachable(Exception):
    """No connection could be made: nothing was sent."""


@dataclass(frozen=True)
class Answer:
    """A whole HTTP response, read; it also answers to the calls python_http_client makes on
    a urllib response (getcode, read, info)."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> http.client.HTTPMessage:
        return self.headers


class _Held:
    """One thread's connection and when it was last used."""

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection
        self.used = time.monotonic()


class Connections:
    """Connections to `origin` (scheme://host[:port]), one per calling thread."""

    def __init__(self, origin: str, timeout: float, *, idle_s: float = IDLE_S) -> None:
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self.idle_s = idle_s
        self._local = threading.local()
        self._all: list[_Held] = []
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        # A backend dropped without close() still closes its sockets.
        weakref.finalize(self, _close_all, self._all)

    def request(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Send one request on this thread's connection and read the whole answer."""
        held, reused = self._connection()
        try:
            held.connection.request(method, path, body, dict(headers))
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            self._drop(held)
            if not reused or isinstance(exc, TimeoutError):
                raise
            held, _ = self._connection()  # it closed while idle: the request never got there
            held.connection.request(method, path, body, dict(headers))
        try:
            response = held.connection.getresponse()
            answer = Answer(response.status, response.reason, response.msg, response.read())
        except BaseException:
            self._drop(held)
            raise
        held.used = time.monotonic()
        if response.will_close:
            self._drop(held)
        return answer

    def close(self) -> None:
        """Close every thread's connection (the backend is done)."""
        with self._lock:
            _close_all(self._all)
        self._local = threading.local()

    def _connection(self) -> tuple[_Held, bool]:
        """This thread's connection, opened now if it has none or it was idle too long; and
        whether it was used before."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and time.monotonic() - held.used <= self.idle_s:
            return held, True
        if held is not None:
            self._drop(held)
        held = _Held(self._open())
        self._local.held = held
        with self._lock:
            self._all.append(held)
        return held, False

    def _drop(self, held: _Held) -> None:
        held.connection.close()
        if getattr(self._local, "held", None) is held:
            self._local.held = None
        with self._lock:
            if held in self._all:
                self._all.remove(held)

    def _open(self) -> http.client.HTTPConnection:
        proxy = _proxy_for(self.scheme, self.host)
        target = (proxy.hostname or "", proxy.port or 80) if proxy else (self.host, self.port)
        connection: http.client.HTTPConnection
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(
                *target, timeout=self.timeout, context=self._tls()
            )
        else:
            connection = http.client.HTTPConnection(*target, timeout=self.timeout)
        if proxy is not None:
            connection.set_tunnel(self.host, self.port, headers=_proxy_headers(proxy))
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            where = f"{self.scheme}://{self.host}:{self.port}"
            raise Unreachable(f"cannot connect to {where}: {exc}") from exc
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context()  # certificates always verified
        return self._context


def _close_all(held: list[_Held]) -> None:
    for h in held:
        h.connection.close()
    held.clear()


def _proxy_for(scheme: str, host: str) -> urllib.parse.SplitResult | None:
    """The proxy urllib would use for `scheme://host`, from the environment."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parts if parts.hostname else None


def _proxy_headers(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}
