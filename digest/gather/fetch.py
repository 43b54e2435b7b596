"""Fetching bytes: http(s) with httpx (bounded time, size and redirects), file:// and local paths.

Fetching is the only I/O in gathering; parsers receive bytes. Every limit is enforced here, and
every failure becomes a FetchError whose message names the precise reason (HTTP status, timeout,
too large, too many redirects, connection refused, file not found), so a staff member reading a
build report knows what to fix without reading a traceback.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from digest import USER_AGENT

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT_S = 15.0
MAX_REDIRECTS = 5
CONCURRENCY = 16
PERMANENT = {301, 308}


@dataclass(frozen=True)
class Limits:
    """Bounds for every fetch; built from `[gather]` settings."""

    timeout_s: float = TIMEOUT_S
    max_bytes: int = MAX_BYTES
    max_redirects: int = MAX_REDIRECTS
    user_agent: str = USER_AGENT
    concurrency: int = CONCURRENCY


@dataclass(frozen=True)
class Validators:
    """What a server told us last time, sent back so an unchanged source can answer 304."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        found = {}
        if self.etag:
            found["If-None-Match"] = self.etag
        if self.last_modified:
            found["If-Modified-Since"] = self.last_modified
        return found

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


NO_VALIDATORS = Validators()


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects: the base for relative links
    body: bytes
    content_type: str = ""
    status: int = 200
    validators: Validators = NO_VALIDATORS
    # Set when a 301/308 moved the source for good: the report suggests updating the config.
    moved_to: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchError(Exception):
    """A source could not be read. `kind` is a short machine-readable reason for reports."""

    def __init__(self, message: str, kind: str = "fetch") -> None:
        super().__init__(message)
        self.kind = kind


class Fetcher(Protocol):
    """Anything that turns a URL into bytes; tests inject fakes, production uses HttpFetcher."""

    async def __call__(
        self, url: str, *, validators: Validators = NO_VALIDATORS, timeout_s: float | None = None
    ) -> Fetched: ...


def is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def local_path(url: str) -> Path:
    """The path a file:// URL or a bare path names."""
    if url.lower().startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


class HttpFetcher:
    """One shared httpx.AsyncClient (connection pooling) plus local files. Use as a context."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HttpFetcher:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.limits.timeout_s),
            follow_redirects=True,
            max_redirects=self.limits.max_redirects,
            headers={"User-Agent": self.limits.user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=self.limits.concurrency),
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(
        self, url: str, *, validators: Validators = NO_VALIDATORS, timeout_s: float | None = None
    ) -> Fetched:
        timeout = timeout_s or self.limits.timeout_s
        try:
            async with asyncio.timeout(timeout):
                if is_http(url):
                    return await self._http(url, validators, timeout)
                return await asyncio.to_thread(read_file, url, self.limits.max_bytes, validators)
        except TimeoutError:
            raise FetchError(f"timed out after {timeout:g} s", "timeout") from None

    async def _http(self, url: str, validators: Validators, timeout: float) -> Fetched:
        if self._client is None:
            raise RuntimeError("HttpFetcher must be used as `async with HttpFetcher(...)`")
        limit = self.limits.max_bytes
        try:
            request = self._client.build_request(
                "GET", url, headers=validators.headers(), timeout=timeout
            )
            response = await self._client.send(request, stream=True)
            try:
                return await _read_response(response, limit)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {timeout:g} s", "timeout") from None
        except httpx.TooManyRedirects:
            raise FetchError(
                f"more than {self.limits.max_redirects} redirects", "redirects"
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(f"redirected to an unsupported URL: {exc}", "redirects") from None
        except httpx.DecodingError as exc:
            raise FetchError(f"undecodable response body: {exc}", "undecodable") from None
        except httpx.HTTPError as exc:
            raise FetchError(
                f"connection failed: {exc or type(exc).__name__}", "connection"
            ) from None


async def _read_response(response: httpx.Response, limit: int) -> Fetched:
    """Status first, then the body in chunks, aborting as soon as it passes the limit."""
    if response.status_code == 304:
        return _fetched(response, b"")
    if response.status_code >= 400:
        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), "http")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError(f"too large: {int(declared)} bytes (limit {limit})", "too-large")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise FetchError(f"too large: more than {limit} bytes (limit {limit})", "too-large")
    return _fetched(response, bytes(body))


def _fetched(response: httpx.Response, body: bytes) -> Fetched:
    moved = bool(response.history) and all(r.status_code in PERMANENT for r in response.history)
    return Fetched(
        url=str(response.url),
        body=body,
        content_type=response.headers.get("content-type", ""),
        status=response.status_code,
        validators=Validators(
            etag=_header(response, "etag"), last_modified=_header(response, "last-modified")
        ),
        moved_to=str(response.url) if moved else None,
    )


def _header(response: httpx.Response, name: str) -> str | None:
    value: str | None = response.headers.get(name)
    # Validators are echoed back in request headers: keep them short and on one line.
    if value and len(value) <= 500 and value.isprintable():
        return value
    return None


def read_file(
    url: str, max_bytes: int = MAX_BYTES, validators: Validators = NO_VALIDATORS
) -> Fetched:
    """A local file; its size and modification time stand in for an ETag."""
    path = local_path(url)
    try:
        stat = path.stat()
        if not path.is_file():
            raise FetchError(f"not a file: {path}", "not-found")
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if validators.etag == etag:
            return Fetched(url=url, body=b"", status=304, validators=validators)
        if stat.st_size > max_bytes:
            raise FetchError(f"too large: {stat.st_size} bytes (limit {max_bytes})", "too-large")
        with path.open("rb") as fh:
            body = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"file not found: {path}", "not-found") from None
    except PermissionError:
        raise FetchError(f"permission denied: {path}", "not-found") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}", "not-found") from None
    if len(body) > max_bytes:  # the file grew after stat()
        raise FetchError(f"too large: more than {max_bytes} bytes (limit {max_bytes})", "too-large")
    return Fetched(url=url, body=body, content_type=_guess_type(path), validators=Validators(etag))


def _guess_type(path: Path) -> str:
    suffix = os.path.splitext(path.name)[1].lower()
    return {
        ".json": "application/json",
        ".html": "text/html",
        ".htm": "text/html",
        ".toml": "application/toml",
    }.get(suffix, "")


def fetch(url: str, validators: Validators = NO_VALIDATORS, limits: Limits = Limits()) -> Fetched:
    """One fetch from synchronous code (a CLI command, a script)."""

    async def once() -> Fetched:
        async with HttpFetcher(limits) as fetcher:
            return await fetcher(url, validators=validators)

    return asyncio.run(once())
