"""Golden files: the demo edition's HTML and text, byte for byte, as `digest preview` writes them.

A change to a template, to the renderer or to MJML shows here as a diff to review. When it is
intended, regenerate the files with the command in REGENERATE (README "Development") and commit
them with the change: the diff of tests/render/golden/ is what a reviewer reads.

The files hold the preview's sample links (`{base_url}/u/preview`), not the per-recipient
placeholders: so each .html opens in a browser with links that go somewhere, and equals what
`make demo` leaves in demo-output/preview/ (tests/test_demo_e2e.py checks that). The placeholders
themselves are checked in test_email.py and test_hostile.py.

MRML writes the body as one line of ~55 KB, which no diff can show. So a golden .html holds the
HTML with a newline after every `>`: `html.replace(">", ">\\n")`, undone exactly by
`golden.replace(">\\n", ">")` (every `>` of the golden is followed by an added newline, so the
first newline after a `>` is always the added one). The comparison is of bytes, both ways.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from digest.render.email import render_edition
from digest.render.placeholders import fill_preview
from tests.conftest import ROOT
from tests.render.conftest import Demo

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = ".venv/bin/python -m pytest tests/render/test_golden.py --update-golden"
# name -> the sections of the variant (None: the full edition, what preview shows).
CASES = {"demo-edition": None, "demo-edition-europe": ("Europe",)}
DIFF_LINES = 40


def to_golden(html: str) -> str:
    return html.replace(">", ">\n")


def from_golden(golden: str) -> str:
    return golden.replace(">\n", ">")


def rendered(demo: Demo, sections: tuple[str, ...] | None) -> dict[str, str]:
    """What `digest preview` writes for the variant: {suffix: file content}."""
    email = render_edition(demo.view, demo.branding, sections)
    return {
        "html": to_golden(fill_preview(email.html, demo.base_url)),
        "txt": fill_preview(email.text, demo.base_url),
    }


def short_diff(golden: str, actual: str, name: str) -> str:
    lines = list(
        difflib.unified_diff(
            golden.splitlines(),
            actual.splitlines(),
            f"{name} (golden)",
            f"{name} (rendered now)",
            n=1,
            lineterm="",
        )
    )
    shown = [line if len(line) <= 200 else line[:199] + "…" for line in lines[:DIFF_LINES]]
    if len(lines) > DIFF_LINES:
        shown.append(f"... {len(lines) - DIFF_LINES} more diff lines")
    return "\n".join(shown)


@pytest.mark.parametrize("suffix", ["html", "txt"])
@pytest.mark.parametrize("name", list(CASES))
def test_demo_edition_matches_golden(
    demo: Demo, name: str, suffix: str, request: pytest.FixtureRequest
) -> None:
    path = GOLDEN / f"{name}.{suffix}"
    actual = rendered(demo, CASES[name])[suffix]
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(actual.encode())
        return
    shown = path.relative_to(ROOT)
    if not path.exists():
        pytest.fail(f"{shown} is missing; make it with:\n  {REGENERATE}", pytrace=False)
    golden = path.read_bytes()
    if golden != actual.encode():
        pytest.fail(
            f"{shown} differs from what the renderer makes now:\n"
            f"{short_diff(golden.decode(errors='replace'), actual, str(shown))}\n"
            f"If the change is intended, regenerate the golden files, review their diff and "
            f"commit it:\n  {REGENERATE}",
            pytrace=False,
        )


def test_golden_html_form_is_lossless(demo: Demo) -> None:
    """The newline after each `>` comes off exactly, even where the HTML had a newline there."""
    html = render_edition(demo.view, demo.branding).html
    assert ">\n" in html  # MRML's head has some: the tricky case is really exercised
    assert from_golden(to_golden(html)) == html
    tricky = "<a>\n\n<b>x</b>\n>\n"
    assert from_golden(to_golden(tricky)) == tricky


def test_golden_files_are_the_only_ones_in_the_folder() -> None:
    """A renamed case must not leave a stale golden behind that nothing compares."""
    expected = {f"{name}.{suffix}" for name in CASES for suffix in ("html", "txt")}
    present = {p.name for p in GOLDEN.iterdir() if p.name != "README.md"}
    assert present == expected


def test_demo_edition_golden_shows_the_edition(demo: Demo) -> None:
    """The golden is of a real edition: every headline, and sample links, no placeholders."""
    html = from_golden((GOLDEN / "demo-edition.html").read_text(encoding="utf-8"))
    text = (GOLDEN / "demo-edition.txt").read_text(encoding="utf-8")
    assert len(demo.view.items) >= 8
    for item in demo.view.items:
        assert item.url in html and item.url in text
    for body in (html, text):
        assert "%%" not in body
        assert f"{demo.base_url}/u/preview" in body and f"{demo.base_url}/manage/preview" in body
