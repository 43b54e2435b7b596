"""Paths as logs may show them: a link's token is its only credential (unsubscribe,
preferences, confirmation), so it never reaches a log (docs/standards.md §5: "strip tokens from
access logs"). Kept free of the web stack's imports: `digest serve`'s log filter uses it before
the app is loaded."""

from __future__ import annotations

import re

_TOKEN_PATH = re.compile(r"^(/(?:u|manage|confirm)/)[^/?\s]+")
# A staff API token is only read from the Authorization header, never logged; one pasted into a
# URL by mistake is cut from the logs too.
_STAFF_TOKEN = re.compile(r"dgst_[A-Za-z0-9_\-]+")


def redact(path: str) -> str:
    """/u/<token> -> /u/[token], dgst_<token> -> dgst_[token]; other paths as they are."""
    return _STAFF_TOKEN.sub("dgst_[token]", _TOKEN_PATH.sub(r"\1[token]", path))
