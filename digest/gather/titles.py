"""Headline words: what two headlines are compared by, in gather's merge and in rank.

Pure and stdlib-only, so the ranking can use it without knowing anything else of gathering.
Typography must not make two copies of one story look different: curly and straight quotes and
apostrophes, dashes, case and accents are folded, and a possessive 's is dropped, so
"Turkey's New Naval Strategy, Explained" and its all-capitals copy with a curly apostrophe and an
em dash give the same words. Stop words are left out: they say nothing about which story it is.
"""

from __future__ import annotations

import re
import unicodedata

STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
        "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will",
        "with", "after", "over", "new", "how", "why", "what",
    }
)  # fmt: skip

# Apostrophe-like marks -> "'"; dash-like marks -> a space ("STRATEGY—EXPLAINED" is two words).
_TYPOGRAPHY = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u02bc\uff07", "'"),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63", " "),
    }
)
# A possessive ("turkey's", "states'") loses its mark; any other apostrophe joins ("don't").
_POSSESSIVE = re.compile(r"(?<=[a-z0-9])'s\b|(?<=s)'(?![a-z0-9])")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def fold(title: str) -> str:
    """Lower case ASCII with typographic quotes and dashes made plain and accents removed."""
    if not title.isascii():
        title = title.translate(_TYPOGRAPHY)
        title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return title.lower()


def title_words(title: str) -> frozenset[str]:
    """The words that make a headline (see the module docstring)."""
    folded = _POSSESSIVE.sub("", fold(title))
    words = (w.replace("'", "") for w in _WORD.findall(folded))
    return frozenset(w for w in words if w not in STOP_WORDS)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard: shared words over all words (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
