"""End to end, the way `make demo` runs it: real CLI processes, then every .eml parsed back."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, TEST_SECRET
from tests.send_helpers import digest_env

pytestmark = pytest.mark.slow
DEMO_NOW = "2026-11-20T09:00:00"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    env = digest_env(
        {
            "DIGEST_DATABASE__URL": f"sqlite:///{out / 'digest.store.db'}",
            "DIGEST_DELIVERY__BACKEND": "outbox",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(out / "outbox"),
            "DIGEST_SECRET_KEY": TEST_SECRET,
            "COLUMNS": "200",
        }
    )
    steps = [
        ["subscribers", "import", str(EXAMPLES / "subscribers.csv")],
        ["build", "--now", DEMO_NOW],
        ["edition", "show", "1"],
        ["preview", "--out", str(out / "preview")],
        ["edition", "approve", "1", "--as", "demo"],
        ["send", "--now", DEMO_NOW],
    ]
    for step in steps:
        result = run(step, env)
        assert result.returncode == 0, f"{step}: {result.stdout}\n{result.stderr}"
    return {"out": out, "outbox": out / "outbox" / "edition-1", "preview": out / "preview"}


def messages(outbox: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def active_addresses() -> set[str]:
    lines = (EXAMPLES / "subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    return {line.split(",")[0] for line in lines if ",active," in line}


def test_one_message_per_active_subscriber(demo: dict[str, Path]) -> None:
    recipients = [m["To"] for m in messages(demo["outbox"])]
    assert sorted(recipients) == sorted(active_addresses())


def test_every_message_has_the_required_headers(demo: dict[str, Path]) -> None:
    for msg in messages(demo["outbox"]):
        assert msg["From"] == "The Meridian Review <roundup@meridianreview.example>"
        assert msg["Subject"] == "The Weekly Round-up: November 20, 2026"
        assert msg["Message-ID"] and msg["Date"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(r"<http://127\.0\.0\.1:8000/u/[\w.-]+>", msg["List-Unsubscribe"])
        assert msg["List-Id"]


def test_parts_are_text_then_html(demo: dict[str, Path]) -> None:
    for msg in messages(demo["outbox"]):
        assert msg.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in msg.iter_parts()]
        assert parts == ["text/plain", "text/html"]


def test_links_are_personal_and_match_the_header(demo: dict[str, Path]) -> None:
    seen = set()
    for msg in messages(demo["outbox"]):
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        header_url = msg["List-Unsubscribe"].strip("<>")
        assert f"Unsubscribe: {header_url}" in text
        assert f'href="{header_url}"' in html
        assert "%%" not in text and "%%" not in html
        seen.add(header_url)
    assert len(seen) == len(active_addresses())


def test_article_links_in_html_point_at_the_publication(demo: dict[str, Path]) -> None:
    html = messages(demo["outbox"])[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    links = set(re.findall(r'href="(https://meridianreview\.example/[^"]+)"', html))
    assert len(links) >= 3


def test_no_line_exceeds_rfc5322_limit(demo: dict[str, Path]) -> None:
    for path in demo["outbox"].glob("*.eml"):
        assert max(len(line) for line in path.read_bytes().split(b"\r\n")) <= 998


def test_subscriber_gets_only_their_sections(demo: dict[str, Path]) -> None:
    row = next(
        line
        for line in (EXAMPLES / "subscribers.csv").read_text().splitlines()
        if ",active," in line and ";" not in line.split(",")[2] and line.split(",")[2]
    )
    address, section = row.split(",")[0], row.split(",")[2]
    msg = next(m for m in messages(demo["outbox"]) if m["To"] == address)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert section.upper() in text
    others = {"MIDDLE EAST", "EUROPE", "ASIA", "MILITARY INDUSTRIAL COMPLEX", "DIPLOMACY"}
    assert not any(f"\n{o}\n" in text for o in others - {section.upper()})


def test_preview_wrote_html_and_text(demo: dict[str, Path]) -> None:
    assert (demo["preview"] / "edition-1.html").read_text().startswith("<!doctype html>")
    assert "Unsubscribe:" in (demo["preview"] / "edition-1.txt").read_text()


def test_preview_took_screenshots_when_chromium_is_installed(demo: dict[str, Path]) -> None:
    shots = sorted(p.name for p in demo["preview"].glob("*.png"))
    if shutil.which("chromium") is None:
        assert shots == []
        return
    assert shots == [f"edition-1-{w}-{s}.png" for w in (375, 600) for s in ("dark", "light")]


def test_preview_links_are_samples_not_placeholders(demo: dict[str, Path]) -> None:
    for name in ("edition-1.html", "edition-1.txt"):
        body = (demo["preview"] / name).read_text()
        assert "%%" not in body, name
        assert "http://127.0.0.1:8000/u/preview" in body, name
        assert "http://127.0.0.1:8000/manage/preview" in body, name


def test_preview_is_the_golden_edition(demo: dict[str, Path]) -> None:
    """What `make demo` previews is what tests/render/golden/ holds (and reviews)."""
    golden = ROOT / "tests" / "render" / "golden"
    html = (golden / "demo-edition.html").read_text(encoding="utf-8").replace(">\n", ">")
    assert (demo["preview"] / "edition-1.html").read_text(encoding="utf-8") == html
    text = (golden / "demo-edition.txt").read_text(encoding="utf-8")
    assert (demo["preview"] / "edition-1.txt").read_text(encoding="utf-8") == text


def test_sending_again_is_refused(demo: dict[str, Path]) -> None:
    env = digest_env(
        {
            "DIGEST_DATABASE__URL": f"sqlite:///{demo['out'] / 'digest.store.db'}",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(demo["out"] / "outbox"),
            "DIGEST_SECRET_KEY": TEST_SECRET,
        }
    )
    result = run(["send"], env)
    assert result.returncode != 0
    assert "already sent" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(list(demo["outbox"].glob("*.eml"))) == len(active_addresses())


def tree(root: Path, skip: str) -> dict[str, bytes]:
    """Every file under `root` but `skip`/, by its path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != skip
    }


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_touches_nothing_it_does_not_own(tmp_path: Path) -> None:
    """`make demo`, then the README's commands on the demo (a pick, a subscriber by staff, so a
    confirmation email): every file outside demo-output/ is as it was, the pick is in the demo's
    copy of the picks file, and the email in demo-output/outbox/transactional/."""
    for name in ("Makefile", "digest.toml", "examples"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    before = tree(tmp_path, "demo-output")
    venv = Path(sys.executable).parent.parent
    env = digest_env({"COLUMNS": "200"})
    # This test's interpreter is the demo's: `-o` keeps make from reinstalling it.
    make = ["make", "-o", f"{venv}/.installed", f"VENV={venv}", "demo"]
    result = subprocess.run(
        make, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 .eml files in demo-output/outbox/edition-1/" in result.stdout
    demo_env = digest_env(
        {"DIGEST_CONFIG": "demo-output/digest.toml", "DIGEST_SECRET_KEY": TEST_SECRET}
    )
    url = "https://meridianreview.example/asia/pakistan-seeks-fresh-imf-support-as-reserves-dwindle-again/"
    for step in (["picks", "add", url, "--note", "x"], ["subscribers", "add", "new@example.com"]):
        done = subprocess.run(
            [str(venv / "bin" / "digest"), *step],
            cwd=tmp_path,
            env=demo_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert tree(tmp_path, "demo-output") == before  # examples/picks.toml included
    demo = tmp_path / "demo-output"
    assert "pakistan-seeks-fresh-imf-support" in (demo / "examples" / "picks.toml").read_text()
    assert len(list((demo / "outbox" / "transactional").glob("*.eml"))) == 1
    assert not (tmp_path / "outbox").exists() and not (tmp_path / "digest.db").exists()
