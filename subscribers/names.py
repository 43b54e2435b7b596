"""Subscribers' names, cleaned on the way in: the one rule for the web form, the JSON API, the
CLI and CSV import.

A name is typed by anyone (the form is public) and shown to operators: in a terminal, a
spreadsheet, an email's greeting. What cannot be part of a person's name goes: control
characters (escape sequences that drive a terminal, CR/LF that split a log or CSV line: the
whitespace ones become a space), bidirectional overrides and isolates (which make "moc.elgoog"
read as "google.com"), and lone surrogates (not text; no database driver can encode them).
Runs of whitespace become one space. Letters of every script, combining marks, emoji and the
zero-width joiners that some scripts and emoji need are kept as typed.

Two things are refused instead (InvalidName), because no person types them and silently
changing them would lose data: a NUL character (PostgreSQL text cannot hold it) and a name
longer than MAX_NAME characters after cleaning. Escaping for each place a name is shown is the
output's job (digest/cli/safe.py, subscribers/csvcells.py, Jinja's autoescape).
"""

from __future__ import annotations

import re
import unicodedata

from subscribers.errors import InvalidName

MAX_NAME = 200
# Bidirectional formatting characters (Unicode's Bidi_Control property).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Controls and separators that mean "white space": they become a space, not nothing.
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_RUNS = re.compile(r"\s+")


def clean_name(raw: str | None) -> str | None:
    """The name to store (None for no name), or InvalidName saying what is wrong with it."""
    if raw is None:
        return None
    if "\x00" in raw:
        raise InvalidName("the name contains a NUL character")
    # isprintable() is False for every character this removes or turns into a space (and
    # for a few it keeps): the common name takes the short way (an import cleans 100,000).
    text = raw if raw.isprintable() else "".join(_clean_char(c) for c in raw)
    text = _RUNS.sub(" ", text).strip()
    if len(text) > MAX_NAME:
        raise InvalidName(f"the name is longer than {MAX_NAME} characters")
    return text or None


def _clean_char(char: str) -> str:
    if char in _SPACES:
        return " "
    if char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
        return ""
    return char
