"""`digest preview`'s screenshots (issue 13): PNGs at 600 and 375 px, light and dark, beside the
HTML when Chromium is there; one line saying why not when it is not, and the files all the same."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from digest.edition import preview
from tests.conftest import CliRun

BUILD = ("build", "--now", "2026-11-20T09:00")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def built(cli: CliRun) -> CliRun:
    code, _, err = cli(*BUILD)
    assert code == 0, err
    return cli


def test_without_chromium_one_line_says_so_and_the_files_are_written(
    built: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "find_chromium", lambda: None)
    code, out, err = built("preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("Screenshots:")]
    assert lines == [
        "Screenshots: not taken: Chromium is not installed (Debian: apt-get install chromium)"
    ]
    assert (tmp_path / "p" / "edition-1.html").is_file()
    assert (tmp_path / "p" / "edition-1.txt").is_file()
    assert not list((tmp_path / "p").glob("*.png"))


def test_without_playwright_one_line_says_so(
    built: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "find_chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    code, out, err = built("preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert "Screenshots: not taken: the playwright package is not installed" in out
    assert (tmp_path / "p" / "edition-1.html").is_file()


def test_no_screenshots_when_asked(built: CliRun, tmp_path: Path) -> None:
    code, out, _ = built("preview", "--no-screenshots", "--out", str(tmp_path / "p"))
    assert code == 0 and "Screenshots: not taken (--no-screenshots)" in out


def test_a_chromium_that_cannot_start_is_one_line(
    built: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(preview, "find_chromium", lambda: str(fake))
    code, out, err = built("preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith("Screenshots:")]
    assert line.startswith("Screenshots: not taken: Chromium failed: ")
    assert (tmp_path / "p" / "edition-1.html").is_file()


@pytest.mark.browser
def test_screenshots_at_two_widths_in_both_schemes(
    built: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium_path: str
) -> None:
    monkeypatch.setattr(preview, "find_chromium", lambda: chromium_path)
    code, out, err = built("preview", "--variant", "Europe", "--out", str(tmp_path / "p"))
    assert code == 0, err
    folder = tmp_path / "p"
    assert (
        f"Screenshots: {folder / 'edition-1-europe-600-light.png'} "
        "(and 375-light, 600-dark, 375-dark)"
    ) in " ".join(out.split())
    shots = {p.name: p for p in folder.glob("*.png")}
    assert set(shots) == {
        f"edition-1-europe-{width}-{scheme}.png"
        for width in (600, 375)
        for scheme in ("light", "dark")
    }
    for name, path in shots.items():
        width, height = png_size(path)
        assert width == int(name.split("-")[-2]), name  # nothing wider than the screen
        assert height > 800, name  # the whole email, not the first screen
    light, dark = (shots[f"edition-1-europe-375-{s}.png"].read_bytes() for s in ("light", "dark"))
    assert light != dark


@pytest.mark.parametrize("kind", ["confirm", "already", "welcome"])
def test_the_emails_to_one_person_preview_with_sample_links(
    cli: CliRun, tmp_path: Path, kind: str
) -> None:
    code, out, err = cli("preview", "--email", kind, "--no-screenshots", "--out", str(tmp_path))
    assert code == 0, err
    html = (tmp_path / f"{kind}.html").read_text()
    text = (tmp_path / f"{kind}.txt").read_text()
    assert "%%" not in html + text and "http://127.0.0.1:8000/" in text
    assert "preflight" not in out  # preflight is for editions
    if kind == "welcome":
        assert "from every section: Middle East, Europe, Asia" in " ".join(text.split())
        assert "http://127.0.0.1:8000/u/preview" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "newsletter"], "--email 'newsletter': one of confirm, already, welcome"),
        (["--email", "welcome", "--edition", "1"], "no --edition or --variant"),
    ],
)
def test_a_wrong_email_preview_is_one_line_exit_2(
    cli: CliRun, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = cli("preview", *args, "--out", str(tmp_path))
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
