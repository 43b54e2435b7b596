"""`digest serve` as a newcomer meets it: a port in use is its own exit code and one line; the
confirmation emails of the demo's web app land in a folder a person would look for, with links
to the port actually served, and the log says where each one went."""

from __future__ import annotations

import email
import email.policy
import logging
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.backends.outbox import OutboxBackend
from digest.config import Settings
from digest.errors import PortInUseError
from digest.people.notify import send_notice
from digest.web.listen import listen, served_settings
from subscribers.optin import CONFIRMATION, Notice
from tests.conftest import ROOT, TEST_SECRET
from tests.send_helpers import digest_env


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other server listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_a_port_in_use_is_exit_11_and_one_line_naming_it(cli, taken_port: int) -> None:
    code, out, err = cli("serve", "--port", str(taken_port))
    assert code == 11
    assert err.strip() == (
        f"error: port {taken_port} is already in use on 127.0.0.1 (another `digest serve`?): "
        "stop it, or choose another port with --port or [web] port"
    )
    assert "Serving" not in out


def test_listen_says_why_an_address_cannot_be_used(taken_port: int) -> None:
    with pytest.raises(PortInUseError):
        listen("127.0.0.1", taken_port)
    with pytest.raises(Exception, match="not an address of this machine"):
        listen("192.0.2.1", 8000)  # TEST-NET-1: never an address of ours
    with listen("127.0.0.1", 0) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"


def test_the_exit_codes_are_distinct() -> None:
    import digest.errors as errors

    codes = {
        kind.__name__: kind.exit_code
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, errors.DigestError)
    }
    assert codes["PortInUseError"] == 11
    assert codes["PortInUseError"] not in {c for n, c in codes.items() if n != "PortInUseError"}


def test_a_loopback_base_url_follows_the_served_port(settings: Settings) -> None:
    assert settings.web.base_url == "http://127.0.0.1:8000"
    assert served_settings(settings, 8765).web.base_url == "http://127.0.0.1:8765"
    assert served_settings(settings, 8000) is settings
    public = settings.model_copy(
        update={"web": settings.web.model_copy(update={"base_url": "https://news.example"})}
    )
    assert served_settings(public, 8765).web.base_url == "https://news.example"


def test_a_confirmation_email_lands_in_transactional_and_the_log_says_where(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notice = Notice(CONFIRMATION, "reader@example.com", "a" * 32, "token.sig", 42)
    caplog.set_level(logging.INFO, logger="digest")
    assert send_notice(settings, notice, OutboxBackend(tmp_path / "outbox"))
    (path,) = (tmp_path / "outbox" / "transactional").glob("*.eml")
    assert path.name.startswith("00000042-")
    assert f"confirmation email 42 handed to the outbox backend: {path}" in caplog.text
    assert "reader@example.com" not in caplog.text  # the log never holds an address


def wait_for(lines: queue.Queue[str], seen: list[str], text: str, timeout: float = 30) -> None:
    """Read the server's output until a line holds `text` (fails, not hangs, after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not any(text in line for line in seen):
        left = deadline - time.monotonic()
        assert left > 0, f"digest serve never logged {text!r}: {''.join(seen)}"
        try:
            seen.append(lines.get(timeout=left))
        except queue.Empty:
            continue


@pytest.mark.slow
def test_the_demo_serve_command_keeps_its_mail_in_the_demo_folder(tmp_path: Path) -> None:
    """The README's serve command, on another port: the confirmation lands in the outbox the
    config names, under transactional/, links to that port, and the log names the file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    outbox = tmp_path / "demo-output" / "outbox"
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(outbox),
            "DIGEST_SECRET_KEY": TEST_SECRET,
        }
    )
    digest = Path(sys.executable).parent / "digest"
    process = subprocess.Popen(
        [str(digest), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    try:
        wait_for(lines, seen, "Application startup complete")
        answer = httpx.post(f"{url}/api/subscribe", json={"email": "newcomer@example.com"})
        assert answer.status_code == 202
        wait_for(lines, seen, "handed to the outbox backend")  # sent after the answer
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        process.stdout.close()
    while not lines.empty():
        seen.append(lines.get())
    log = "".join(seen)
    (path,) = (outbox / "transactional").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert re.search(rf"http://127\.0\.0\.1:{port}/confirm/\S+", text)
    assert ":8000" not in text
    assert f"(public address http://127.0.0.1:{port};" in log
    assert f"Confirmation emails are written to {outbox / 'transactional'}/" in log
    assert f"handed to the outbox backend: {path}" in log
    assert not (tmp_path / "outbox").exists() and not (ROOT / "outbox").exists()
