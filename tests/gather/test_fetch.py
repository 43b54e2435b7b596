"""Fetching against a real local HTTP server: limits, conditional GET, redirects, errors, files."""

from __future__ import annotations

import asyncio
import gzip
import socket
from pathlib import Path

import pytest

from digest import USER_AGENT
from digest.gather.fetch import Fetched, FetchError, HttpFetcher, Limits, Validators, read_file
from tests.fakes.feed_server import FeedServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>'


def get(url: str, limits: Limits = Limits(), validators: Validators = Validators()) -> Fetched:
    async def run() -> Fetched:
        async with HttpFetcher(limits) as fetcher:
            return await fetcher(url, validators=validators)

    return asyncio.run(run())


def test_user_agent_names_digest_and_its_url(server: FeedServer) -> None:
    get(server.add("/f", body=FEED))
    agent = server.seen("/f")[0].headers["user-agent"]
    assert agent == USER_AGENT and "digest/" in agent and "https://" in agent


def test_validators_are_returned_and_sent_back(server: FeedServer) -> None:
    url = server.add("/f", body=FEED, etag='"v1"', last_modified="Wed, 18 Nov 2026 10:00:00 GMT")
    first = get(url)
    assert first.validators == Validators('"v1"', "Wed, 18 Nov 2026 10:00:00 GMT")
    second = get(url, validators=first.validators)
    assert second.not_modified and second.body == b""
    headers = server.seen("/f")[1].headers
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Wed, 18 Nov 2026 10:00:00 GMT"


def test_a_changed_source_answers_200_despite_old_validators(server: FeedServer) -> None:
    url = server.add("/f", body=FEED, etag='"v2"')
    fetched = get(url, validators=Validators('"v1"'))
    assert fetched.status == 200 and fetched.body == FEED


def test_a_slow_server_times_out_with_the_limit_in_the_message(server: FeedServer) -> None:
    url = server.add("/slow", body=FEED, delay_s=2.0)
    with pytest.raises(FetchError, match=r"timed out after 0.3 s") as info:
        get(url, Limits(timeout_s=0.3))
    assert info.value.kind == "timeout"


def test_a_dripping_body_is_bounded_by_the_total_timeout(server: FeedServer) -> None:
    url = server.add("/drip", body=b"x" * 40, chunk=1, drip_s=0.05)
    with pytest.raises(FetchError, match="timed out"):
        get(url, Limits(timeout_s=0.5))


def test_redirects_are_followed_up_to_the_cap(server: FeedServer) -> None:
    server.add("/final", body=FEED)
    server.add("/r2", redirect_to="/final")
    url = server.add("/r1", redirect_to="/r2")
    fetched = get(url, Limits(max_redirects=2))
    assert fetched.url.endswith("/final") and fetched.body == FEED
    with pytest.raises(FetchError, match="more than 1 redirects") as info:
        get(url, Limits(max_redirects=1))
    assert info.value.kind == "redirects"


def test_a_redirect_loop_is_cut(server: FeedServer) -> None:
    server.add("/a", redirect_to="/b")
    server.add("/b", redirect_to="/a")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        get(server.url("/a"))


def test_a_permanent_redirect_is_reported_as_moved(server: FeedServer) -> None:
    server.add("/new", body=FEED)
    url = server.add("/old", redirect_to="/new", status=301)
    assert get(url).moved_to == server.url("/new")


def test_a_redirect_to_a_file_url_is_refused(server: FeedServer) -> None:
    url = server.add("/evil", redirect_to="file:///etc/passwd")
    with pytest.raises(FetchError, match="unsupported URL") as info:
        get(url)
    assert info.value.kind == "redirects"


def test_a_declared_oversize_body_is_refused_before_reading(server: FeedServer) -> None:
    url = server.add("/big", body=b"x" * 5000)
    with pytest.raises(FetchError, match=r"too large: 5000 bytes \(limit 2048\)") as info:
        get(url, Limits(max_bytes=2048))
    assert info.value.kind == "too-large"


def test_an_oversize_body_without_content_length_is_cut_while_streaming(server: FeedServer) -> None:
    url = server.add("/stream", body=b"x" * 200_000, content_length=False, chunk=4096)
    with pytest.raises(FetchError, match="too large: more than 4096 bytes"):
        get(url, Limits(max_bytes=4096))


def test_a_gzip_bomb_is_measured_after_decompression(server: FeedServer) -> None:
    url = server.add("/bomb", body=b"\0" * 2_000_000, gzip=True)
    assert len(gzip.compress(b"\0" * 2_000_000)) < 10_000
    with pytest.raises(FetchError, match="too large"):
        get(url, Limits(max_bytes=100_000))


def test_gzip_bodies_are_decoded(server: FeedServer) -> None:
    assert get(server.add("/gz", body=FEED, gzip=True)).body == FEED


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error"), (410, "HTTP 410 Gone")],
)
def test_http_errors_name_the_status(server: FeedServer, status: int, reason: str) -> None:
    url = server.add("/e", body=b"no", status=status)
    with pytest.raises(FetchError, match=reason) as info:
        get(url)
    assert info.value.kind == "http"


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed") as info:
        get(f"http://127.0.0.1:{port}/feed")
    assert info.value.kind == "connection"


def test_local_files_and_file_urls_are_read(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    assert read_file(str(path)).body == FEED
    assert get(path.as_uri()).body == FEED


def test_an_unchanged_local_file_is_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    first = read_file(str(path))
    assert read_file(str(path), validators=first.validators).not_modified
    path.write_bytes(FEED + b" ")
    assert not read_file(str(path), validators=first.validators).not_modified


@pytest.mark.parametrize(
    ("name", "message"), [("missing.xml", "file not found"), ("", "not a file")]
)
def test_missing_files_and_directories_are_errors(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        read_file(str(tmp_path / name))


def test_an_oversize_local_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 3000)
    with pytest.raises(FetchError, match=r"too large: 3000 bytes \(limit 1024\)"):
        read_file(str(path), max_bytes=1024)
