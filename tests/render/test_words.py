"""The words of each variant (render/words.py) and the palette's contrast (digest/colors.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from digest.colors import DARK, LIGHT, contrast, low_contrast, parse_hex
from digest.render.words import (
    fill_intro,
    join_names,
    preheader,
    preheader_padding,
    sentence_cut,
    stories,
)


@pytest.mark.parametrize(
    ("names", "joined"),
    [
        ([], ""),
        (["Europe"], "Europe"),
        (["Europe", "Asia"], "Europe and Asia"),
        (["Middle East", "Europe", "Asia"], "Middle East, Europe and Asia"),
    ],
)
def test_join_names(names: list[str], joined: str) -> None:
    assert join_names(names) == joined


def test_fill_intro_fills_only_its_own_names() -> None:
    intro = "{stories} ({count}) from {sections}; {title} and {} stay as written."
    assert fill_intro(intro, ["Europe"], 1) == (
        "1 story (1) from Europe; {title} and {} stay as written."
    )
    assert stories(2) == "2 stories"


@pytest.mark.parametrize(
    ("excerpt", "kept"),
    [
        # The last full sentence keeps more than 60%: the cut ends there.
        (
            "Talks resumed on Monday. Both sides reported progress on the text. Then…",
            "Talks resumed on Monday. Both sides reported progress on the text.",
        ),
        # Quotes close a sentence; a question ends one.
        (
            'The envoy said talks would go on "until there is a deal." Is one near? Not…',
            'The envoy said talks would go on "until there is a deal." Is one near?',
        ),
        # No sentence end near: the last clause, with the ellipsis.
        (
            "Both sides reported progress on the text, the envoy said, and a deal could follow by…",
            "Both sides reported progress on the text, the envoy said…",
        ),
        # Nothing near: the excerpt stays as it was.
        (
            "Talks resumed. Both sides reported progress on the text of a deal that…",
            "Talks resumed. Both sides reported progress on the text of a deal that…",
        ),
        # Abbreviations and initials end no sentence.
        (
            "Officials from the U.S. Treasury met Mr. Okafor and J. Smith on the budget for…",
            "Officials from the U.S. Treasury met Mr. Okafor and J. Smith on the budget for…",
        ),
        # Not cut at all: nothing to do.
        ("A whole excerpt. It ends here.", "A whole excerpt. It ends here."),
    ],
)
def test_sentence_cut(excerpt: str, kept: str) -> None:
    assert sentence_cut(excerpt) == kept


def test_preheader_from_staff_or_whole_headlines_and_padding() -> None:
    assert preheader("  Staff's line ", ["A", "B"]) == "Staff's line"
    assert preheader("", ["A", "B", "C", "D"]) == "A · B · C"
    assert preheader("", ["x" * 200]).endswith("…")
    assert str(preheader_padding("x" * 190)).count("&zwnj;") == 10
    assert str(preheader_padding("x" * 300)) == ""


def test_contrast_matches_wcag() -> None:
    assert contrast("#000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    # The numbers the issue measured in the old design.
    assert contrast("#6e7781", "#f3f1ea") == pytest.approx(4.02, abs=0.01)
    assert contrast("#e6edf3", "#fffdf8") == pytest.approx(1.16, abs=0.01)


def test_the_default_palettes_pass_and_a_faint_one_is_named() -> None:
    assert low_contrast(LIGHT) == [] and low_contrast(DARK) == []
    faint = replace(LIGHT, muted="#9a9a9a")
    (clash,) = low_contrast(faint)[:1]
    assert clash.describe() == "muted #9a9a9a on surface #fffdf8 is 2.8:1"


@pytest.mark.parametrize("bad", ["red", "#12", "#1234567", "12ab34", "#ggg"])
def test_parse_hex_refuses_what_is_not_a_hex_colour(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a colour"):
        parse_hex(bad)
    assert parse_hex("#ABC") == "#aabbcc"
