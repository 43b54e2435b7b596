"""A real HTTP server on 127.0.0.1:0 that plays every part a hostile or sloppy site plays.

Each path is a Route: a body with headers, or a redirect, or an error status; optionally slow
(a delay before the headers, or a body that drips), oversized, without Content-Length, gzipped,
or conditional (answers 304 to a matching If-None-Match / If-Modified-Since). Every request is
recorded with its headers, so tests can assert on the User-Agent and the validators sent.

Used by the gathering tests and by bench/gather.py.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0  # before the status line
    drip_s: float = 0.0  # between body chunks
    chunk: int = 0  # body chunk size (0: all at once)
    redirect_to: str | None = None  # a path on this server or an absolute URL
    content_length: bool = True  # False: no Content-Length, the body ends with the connection
    declared_length: int | None = None  # a Content-Length that lies
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """`with FeedServer() as server: server.add("/feed", Route(body=...)); server.url("/feed")`"""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        handler = _handler(self)
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, route: Route | None = None, **fields: object) -> str:
        self.routes[path] = route or Route(**fields)  # type: ignore[arg-type]
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many clients connect at once (the benchmark)
    daemon_threads = True
    block_on_close = False


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with server._lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Seen(self.path, headers))
            route = server.routes.get(self.path)
            # The client may give up (too large, timed out): that is the point of the test.
            with contextlib.suppress(ConnectionError, TimeoutError):
                self._answer(route)

        def _answer(self, route: Route | None) -> None:
            if route is None:
                self._simple(404, b"not found")
                return
            if route.delay_s:
                time.sleep(route.delay_s)
            if route.redirect_to is not None:
                location = route.redirect_to
                if location.startswith("/"):
                    location = server.url(location)
                self.send_response(route.status if 300 <= route.status < 400 else 302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self._not_modified(route):
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._body(route)

        def _not_modified(self, route: Route) -> bool:
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            return bool(
                (route.etag and inm == route.etag)
                or (route.last_modified and ims == route.last_modified)
            )

        def _body(self, route: Route) -> None:
            body = gzip.compress(route.body) if route.gzip else route.body
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            if route.gzip:
                self.send_header("Content-Encoding", "gzip")
            for key, value in route.headers.items():
                self.send_header(key, value)
            if route.declared_length is not None:
                self.send_header("Content-Length", str(route.declared_length))
            elif route.content_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            step = route.chunk or len(body) or 1
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if route.drip_s:
                    time.sleep(route.drip_s)

        def _simple(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
