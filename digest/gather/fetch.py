"""Fetching bytes: http(s) with httpx (bounded size, time and redirects), file:// and paths.

Fetching is the only I/O in gathering; parsers receive bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import USER_AGENT

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT_S = 15.0
MAX_REDIRECTS = 5


class FetchError(Exception):
    """A source could not be read; the message names the precise reason."""


@dataclass(frozen=True)
class Fetched:
    url: str
    body: bytes
    content_type: str = ""
    status: int = 200


def fetch(url: str, client: httpx.Client | None = None, max_bytes: int = MAX_BYTES) -> Fetched:
    if url.startswith(("http://", "https://")):
        return _fetch_http(url, client, max_bytes)
    return _fetch_file(url, max_bytes)


def _fetch_file(url: str, max_bytes: int) -> Fetched:
    path = Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(f"too large: {size} bytes (limit {max_bytes})")
        return Fetched(url=url, body=path.read_bytes())
    except FileNotFoundError:
        raise FetchError(f"file not found: {path}") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror}") from None


def _fetch_http(url: str, client: httpx.Client | None, max_bytes: int) -> Fetched:
    own = client is None
    client = client or httpx.Client(
        timeout=TIMEOUT_S,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
    )
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"too large: more than {max_bytes} bytes")
            return Fetched(
                url=str(response.url),
                body=bytes(body),
                content_type=response.headers.get("content-type", ""),
                status=response.status_code,
            )
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {TIMEOUT_S:g} s") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"connection failed: {exc}") from None
    finally:
        if own:
            client.close()
