"""A raw HTTP/1.1 client for the tests that need to see what an HTTP library hides: chunked
bodies without Content-Length that keep coming while the server answers, requests that stop
half-way through their headers or body, and exactly when a server closes the connection.

`send_body` writes a chunked (or declared-length) body and reads the answer as soon as one
arrives, as curl and browsers do; a client that only reads after sending everything would
never see an early 413.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

# Generous: only a server that never answers waits this long (the test then fails).
WAIT_S = 20.0
MB = 1 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to write before the server answered or closed

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def head(path: str, headers: Iterable[tuple[str, str]], *, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send_body(
    base_url: str,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    body: bytes | None = None,
    total: int = 0,
    prefix: bytes = b"",
    chunked: bool = True,
) -> Answer:
    """POST `body`, or `prefix` and then zeros up to `total` bytes in 1 MB pieces, chunked
    unless told otherwise; stop as soon as the server answers or closes; the answer."""
    pieces = _pieces(body, total, prefix)
    size = len(body) if body is not None else total
    all_headers = list(headers)
    all_headers.append(
        ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size))
    )
    with connect(base_url) as sock:
        sock.sendall(head(path, all_headers))
        sent = 0
        for piece in pieces:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered (or closed) before the body was complete
            frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        else:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"0\r\n\r\n" if chunked else b"")
        return read_answer(sock, sent)


def _pieces(body: bytes | None, total: int, prefix: bytes) -> Iterator[bytes]:
    if body is not None:
        yield body
        return
    zeros = b"0" * MB
    if prefix:
        yield prefix
    left = total - len(prefix)
    while left > 0:
        yield zeros[: min(MB, left)]
        left -= MB


def read_answer(sock: socket.socket, sent: int = 0) -> Answer:
    """The response on `sock` (status, headers, a Content-Length or chunked body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = _recv(sock)
        if not more:
            raise ConnectionError(f"the server closed the connection without an answer: {data!r}")
        data += more
    raw_head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "-1"))
    if length >= 0:
        while len(rest) < length:
            more = _recv(sock)
            if not more:
                break
            rest += more
        body = rest[:length]
    else:
        body = rest
    return Answer(int(status_line.split()[1]), headers, body, sent)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection (True), rather than leaving it open for
    WAIT_S seconds (False). Whatever the server sent first is read and dropped."""
    try:
        while True:
            if not _recv(sock):
                return True
    except TimeoutError:
        return False


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except ConnectionResetError:
        return b""
