"""Two real `digest serve` processes on one database, as behind one proxy: the per-IP subscribe
limit and the staff token-failure limit are shared (counted in the database, not in each
process), a staff token works on both, and neither process logs a token or a password."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from digest.store.db import make_engine, session_factory
from digest.store.models import PUBLISHER
from tests.conftest import ROOT, TEST_SECRET
from tests.send_helpers import digest_env
from tests.staff_helpers import PASSWORD, add_staff

pytestmark = pytest.mark.slow


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(tmp_path: Path, db: Path, name: str) -> Server:
    port = free_port()
    log = tmp_path / f"{name}.log"
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{db}",
            "DIGEST_SECRET_KEY": TEST_SECRET,
            "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
            "DIGEST_WEB__SUBSCRIBE_IP_LIMIT": "3",
            "DIGEST_STAFF__TOKEN_FAILURES": "4",
        }
    )
    command = [sys.executable, "-m", "digest", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"digest serve did not start: {log.read_text()}") from None
            time.sleep(0.05)
    return Server(f"http://127.0.0.1:{port}", process, log)


@pytest.fixture
def two(tmp_path: Path, template_db: Path) -> Iterator[tuple[Server, Server, str]]:
    db = tmp_path / "shared.db"
    shutil.copy(template_db, db)
    engine = make_engine(f"sqlite:///{db}")
    token = add_staff(session_factory(engine), "ops@meridianreview.example", PUBLISHER)
    engine.dispose()
    servers = [start(tmp_path, db, "a"), start(tmp_path, db, "b")]
    try:
        yield servers[0], servers[1], token
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def test_the_subscribe_limit_per_ip_holds_across_two_processes(
    two: tuple[Server, Server, str],
) -> None:
    a, b, _ = two
    codes = []
    for n, server in enumerate((a, b, a, b, a)):
        response = httpx.post(
            f"{server.url}/api/subscribe", json={"email": f"reader{n}@example.com"}, timeout=30
        )
        codes.append(response.status_code)
    # A limit of 3 per process would have allowed all five (3 + 2).
    assert codes == [202, 202, 202, 429, 429]


def test_token_failures_are_shared_and_no_token_or_password_is_logged(
    two: tuple[Server, Server, str],
) -> None:
    a, b, token = two
    good = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{a.url}/api/me", headers=good, timeout=30).status_code == 200
    assert httpx.get(f"{b.url}/api/me", headers=good, timeout=30).status_code == 200
    wrong = "dgst_" + "w" * 43
    codes = [
        httpx.get(f"{s.url}/api/me", headers={"Authorization": f"Bearer {wrong}"}).status_code
        for s in (a, b, a, b, a)
    ]
    assert codes == [401, 401, 401, 401, 429]
    login = httpx.get(f"{b.url}/staff/login")
    form = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    httpx.post(
        f"{b.url}/staff/login",
        data={"email": "ops@meridianreview.example", "password": PASSWORD, "csrf_token": form},
        cookies=login.cookies,
    )
    for server in (a, b):
        server.process.terminate()
        server.process.wait(timeout=20)
        log = server.log.read_text()
        assert '"GET /api/me HTTP/1.1" 200' in log or '"GET /api/me HTTP/1.1" 429' in log
        for secret in (token, wrong, PASSWORD, token[5:20]):
            assert secret not in log
    assert os.path.getsize(b.log) > 0
