"""Keep-alive connections to the SendGrid API: one per sending thread, reused request after
request, opened again after an idle spell; a proxy from the environment is tunnelled through.
Against the fake SendGrid on 127.0.0.1, which counts the connections it accepted."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from digest.backends.base import Batch, Recipient, TransientError
from digest.backends.keepalive import Connections, _proxy_for, _proxy_headers
from digest.backends.sendgrid import SendGridBackend
from tests.fakes.sendgrid import FakeSendGrid, Fault

KEY = "SG.keepalive-test"
NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(KEY) as server:
        yield server


def _batch(first: int, n: int = 2) -> Batch:
    return Batch(
        batch_id=str(first),
        edition_id=1,
        subject="The Weekly Round-up",
        html="<p>%%unsubscribe_url%%</p>",
        text="Unsubscribe: %%unsubscribe_url%%",
        from_email="roundup@news.example",
        recipients=[
            Recipient(
                first + i,
                f"user{first + i}@example.com",
                {"%%unsubscribe_url%%": f"https://n.example/u/t{first + i}"},
                {"List-Unsubscribe": f"<https://n.example/u/t{first + i}>"},
            )
            for i in range(n)
        ],
    )


def test_every_request_of_a_thread_goes_on_one_connection(fake: FakeSendGrid) -> None:
    with SendGridBackend(KEY, fake.url, clock=lambda: NOW) as backend:
        for first in range(0, 20, 2):
            assert [s.status for s in backend.send_batch(_batch(first))] == ["accepted"] * 2
    assert fake.stats()["requests"] == 10 and fake.connections == 1


def test_each_sending_thread_has_a_connection_of_its_own(fake: FakeSendGrid) -> None:
    together = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def hold(number: int, phase: str) -> None:
        if phase == "received" and number <= 4:
            together.wait()  # the first four requests are in flight at the same time

    fake.on_request = hold
    with SendGridBackend(KEY, fake.url, clock=lambda: NOW) as backend:

        def send(first: int) -> None:
            try:
                for k in range(3):
                    backend.send_batch(_batch(first * 100 + k * 2))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert fake.stats()["requests"] == 12 and fake.connections == 4


def test_a_connection_idle_too_long_is_opened_again(fake: FakeSendGrid) -> None:
    connections = Connections(fake.url, timeout=5, idle_s=0.0)
    try:
        for _ in range(3):
            answer = connections.request("GET", "/_fake/stats", b"", {})
            assert answer.status == 200
    finally:
        connections.close()
    assert fake.connections == 3


def test_an_error_answer_keeps_the_connection(fake: FakeSendGrid) -> None:
    fake.script(Fault(503, "busy"))
    with SendGridBackend(KEY, fake.url, clock=lambda: NOW) as backend:
        with pytest.raises(TransientError, match="SendGrid 503: busy"):
            backend.send_batch(_batch(0))
        assert [s.status for s in backend.send_batch(_batch(2))] == ["accepted"] * 2
    assert fake.connections == 1


def test_a_connection_the_server_dropped_is_replaced_for_the_next_batch(
    fake: FakeSendGrid,
) -> None:
    fake.script(Fault(drop=True))
    with SendGridBackend(KEY, fake.url, clock=lambda: NOW) as backend:
        with pytest.raises(TransientError) as lost:
            backend.send_batch(_batch(0))
        assert lost.value.maybe_sent  # the request had gone out: SendGrid may have it
        assert [s.status for s in backend.send_batch(_batch(2))] == ["accepted"] * 2
    assert fake.connections == 2


def test_close_closes_every_threads_connection(fake: FakeSendGrid) -> None:
    connections = Connections(fake.url, timeout=5)
    connections.request("GET", "/_fake/stats", b"", {})
    held = connections._all[0].connection
    assert held.sock is not None
    connections.close()
    assert held.sock is None and connections._all == []


def test_nobody_listening_is_unreachable_and_nothing_was_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = SendGridBackend(KEY, f"http://127.0.0.1:{port}")
    with backend, pytest.raises(TransientError, match="cannot reach SendGrid") as refused:
        backend.send_batch(_batch(0))
    assert not refused.value.maybe_sent


def test_a_proxy_from_the_environment_is_used_unless_the_host_is_excluded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", "http://mailer:s%3Acret@proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    proxy = _proxy_for("https", "api.sendgrid.com")
    assert proxy is not None and (proxy.hostname, proxy.port) == ("proxy.internal", 3128)
    assert _proxy_headers(proxy) == {"Proxy-Authorization": "Basic bWFpbGVyOnM6Y3JldA=="}
    assert _proxy_for("https", "127.0.0.1") is None
    assert _proxy_for("http", "api.sendgrid.com") is None  # only https_proxy is set


def test_a_tunnel_through_the_proxy_reaches_the_api(
    fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with SendGridBackend(KEY, fake.url, clock=lambda: NOW) as backend:
            for first in (0, 2):
                assert [s.status for s in backend.send_batch(_batch(first))] == ["accepted"] * 2
    host = fake.url.removeprefix("http://")
    assert proxy.tunnels == [host]  # one tunnel, kept alive for both requests


class _ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1: what `https_proxy` points at."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.tunnels: list[str] = []

    def __enter__(self) -> _ConnectProxy:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        target = head.split(b" ")[1].decode()
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(30)
        upstream.close()
        client.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
