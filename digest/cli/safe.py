"""Text from outside, made safe to print in an operator's terminal.

Names, addresses, consent sources, provider messages and clicked URLs come from the public
form, import files, SendGrid and remote mail servers. Printed as they are through Rich they
attack the operator: `[link=https://evil.example]Call support[/link]` is Rich markup and
becomes a clickable link, `\\x1b]8;;...` is the terminal's own hyperlink escape, `\\x1b[2J`
clears the screen, a CR rewrites the line it is on, and a bidi override makes text read
backwards. `shown` writes every control character (C0, DEL, C1), bidi control, line separator
and lone surrogate as a visible escape (`\\x1b`, `\\u202e`) and escapes Rich markup; every
command that prints such a value passes it through here (so does the one-line error of
digest/cli/__init__.py). `--json` output goes through subscribers.export.json_text, which does
the same with JSON's own escapes. Imported by every command: only `re` and Rich.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


def shown(value: Any) -> str:
    """`value` as text for console.print: no markup, no escape sequence, nothing invisible."""
    return escape(_UNSAFE.sub(_visible, str(value)))


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
