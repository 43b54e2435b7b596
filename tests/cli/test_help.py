"""Help as a person reads it: every bracketed word of a command's help ([web], [newsletter],
[subscribers]) survives the Rich renderer, which would otherwise take it for markup and drop it,
and a docstring's paragraphs are wrapped by the terminal, not by the source's line ends."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main

from digest.cli import app

BRACKETED = re.compile(r"\\?\[([a-z][a-z_]*)\]")


def pages() -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in command.commands.items():
            found.append(([*path, name], sub))
            if hasattr(sub, "commands"):
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def bracketed_words(command: Any) -> set[str]:
    """The [section] names a command's own texts mention: its help and its options' help."""
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    return {f"[{word}]" for text in texts for word in BRACKETED.findall(text)}


PAGES = pages()
WITH_BRACKETS = [(path, command) for path, command in PAGES if bracketed_words(command)]


def test_some_help_mentions_a_section() -> None:
    """The test below checks something: [web], [newsletter] and [subscribers] are all named."""
    every = set().union(*(bracketed_words(c) for _, c in WITH_BRACKETS))
    assert {"[web]", "[newsletter]", "[subscribers]"} <= every


@pytest.mark.parametrize(
    ("path", "command"), WITH_BRACKETS, ids=[" ".join(p) for p, _ in WITH_BRACKETS]
)
def test_bracketed_words_survive_the_help_renderer(cli, path: list[str], command: Any) -> None:
    code, out, _ = cli(*path, "--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())  # the panel's borders and wrapping away
    for word in bracketed_words(command):
        assert word in text, f"digest {' '.join(path)} --help lost {word}"


def test_a_paragraph_of_a_docstring_is_one_paragraph(cli) -> None:
    code, out, _ = cli("build", "--help")
    assert code == 0
    assert "A thin week (fewer than min_items) is recorded as skipped and exits 5." in out
