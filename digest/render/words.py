"""The words an email makes of an edition for one variant: the intro filled in for the reader's
sections, the preheader from its own top headlines, excerpts ending where a sentence does.

Pure string functions; each variant calls them, so the ones that see the same input in every
variant (an excerpt) are cached.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from functools import lru_cache

from markupsafe import Markup

ELLIPSIS = "…"
# An excerpt is cut at its last sentence (or clause) end when that keeps at least this share.
SENTENCE_NEAR = 0.6
# What inboxes show after the subject: room for this many characters, filled by the preheader
# and then by invisible padding, so the mail app does not pull the masthead's text in after it.
PREHEADER_CHARS = 140
PREHEADER_ROOM = 200
# A combining grapheme joiner, a zero-width non-joiner and a no-break space: invisible, and
# not collapsed by the mail apps that collapse runs of plain spaces.
_PAD = "&#847;&zwnj;&nbsp;"

# A sentence ends at . ! or ? (and any closing quotes or brackets) before a space and a capital,
# a digit or an opening quote.
_CLOSERS = "'\"\u2019\u201d)\\]"
_OPENERS = "'\"\u2018\u201c(\\["
_SENTENCE_END = re.compile(f"[.!?][{_CLOSERS}]*(?=\\s+[{_OPENERS}]?[A-Z0-9\u00c0-\u00de])")
# A clause ends at a comma, semicolon, colon or spaced dash (the cut goes before it).
_CLAUSE_END = re.compile("[,;:](?=\\s)|\\s[\u2013\u2014](?=\\s)")
# Words a full stop follows without ending a sentence.
_ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "lt", "sgt", "capt"),
        *("gov", "sen", "rep", "rev", "no", "vs", "etc", "inc", "ltd", "co", "corp"),
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
        *("e.g", "i.e", "u.s", "u.k", "u.n", "e.u"),
    }
)


def join_names(names: Sequence[str]) -> str:
    """'Europe', 'Europe and Asia', 'Middle East, Europe and Asia'."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def stories(count: int) -> str:
    return f"{count} {'story' if count == 1 else 'stories'}"


def fill_intro(intro: str, sections: Sequence[str], count: int) -> str:
    """The edition's intro for one variant: {sections}, {stories} and {count} filled in (only
    those: any other brace is the editor's own text and stays)."""
    if "{" not in intro:
        return intro
    values = {
        "{sections}": join_names(sections),
        "{stories}": stories(count),
        "{count}": str(count),
    }
    for key, value in values.items():
        intro = intro.replace(key, value)
    return intro


def preheader(staff: str, titles: Sequence[str]) -> str:
    """Staff's preheader, else the variant's first headlines (as many whole ones as fit): each
    reader's inbox line names stories they will find inside, never another variant's."""
    if staff.strip():
        return textwrap.shorten(staff, PREHEADER_CHARS, placeholder=ELLIPSIS)
    shown: list[str] = []
    for title in titles[:3]:
        if shown and len(" · ".join([*shown, title])) > PREHEADER_CHARS:
            break
        shown.append(title)
    return textwrap.shorten(" · ".join(shown), PREHEADER_CHARS, placeholder=ELLIPSIS)


def preheader_padding(text: str) -> Markup:
    """Invisible characters after the preheader, up to the room inboxes give it."""
    return Markup(_PAD * max(0, PREHEADER_ROOM - len(text)))


@lru_cache(maxsize=4096)
def sentence_cut(excerpt: str) -> str:
    """An excerpt the gatherer cut mid-phrase ('… can take years to become a…') ends at its last
    full sentence instead when that is near its end (keeps at least 60% of it), else at its last
    clause ('… built for large prime contractors…'); with neither near, it is kept as is."""
    if not excerpt.endswith(ELLIPSIS):
        return excerpt
    near = len(excerpt) * SENTENCE_NEAR
    sentence = max(
        (m.end() for m in _SENTENCE_END.finditer(excerpt) if not _abbreviation(excerpt, m.start())),
        default=0,
    )
    if sentence >= near:
        return excerpt[:sentence]
    clause = max((m.start() for m in _CLAUSE_END.finditer(excerpt)), default=0)
    if clause >= near:
        return excerpt[:clause] + ELLIPSIS
    return excerpt


def _abbreviation(text: str, stop: int) -> bool:
    """Whether the full stop at `stop` closes an abbreviation or an initial ('Mr.', 'J.')."""
    if text[stop] != ".":
        return False
    word = text[:stop].rsplit(None, 1)[-1] if text[:stop].strip() else ""
    word = word.lstrip(_OPENERS)
    return len(word) == 1 or word.lower() in _ABBREVIATIONS
