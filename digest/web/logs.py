"""Paths as logs may show them: a link's token is its only credential (unsubscribe,
preferences, confirmation), so it never reaches a log (docs/standards.md §5: "strip tokens from
access logs"). Kept free of the web stack's imports: `digest serve`'s log filter uses it before
the app is loaded."""

from __future__ import annotations

import re

_TOKEN_PATH = re.compile(r"^(/(?:u|manage|confirm)/)[^/?\s]+")


def redact(path: str) -> str:
    """/u/<token> -> /u/[token]; other paths as they are."""
    return _TOKEN_PATH.sub(r"\1[token]", path)
