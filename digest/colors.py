"""Colours of an email's palette and the contrast between them (WCAG 2.x).

A palette is checked when the configuration is read (digest/config.py), so a publication that
picks a grey too light for its footer learns it then, in one line, not from a reader: every
text an email shows must reach 4.5:1 against what is behind it (WCAG 2.1 SC 1.4.3, AA).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import NamedTuple

MIN_CONTRAST = 4.5
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


def parse_hex(value: str) -> str:
    """'#abc' or '#aabbcc' (any case) -> '#aabbcc'; anything else raises ValueError."""
    value = value.strip()
    if not _HEX.fullmatch(value):
        raise ValueError(f"{value!r} is not a colour like '#1a2b3c'")
    digits = value[1:].lower()
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return "#" + digits


def luminance(colour: str) -> float:
    """Relative luminance of an sRGB colour (WCAG 2.x definition)."""
    digits = parse_hex(colour)[1:]
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """The contrast ratio, 1.0 (none) to 21.0 (black on white)."""
    a, b = luminance(foreground), luminance(background)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


@dataclass(frozen=True)
class Palette:
    """One colour scheme of the email. `surface` is the card the articles sit on,
    `background` the page around it (and the footer); `button` is a button's fill, and
    `button_text` its label."""

    background: str
    surface: str
    text: str
    muted: str
    headline: str
    accent: str
    rule: str
    button: str
    button_text: str


# The defaults ([branding] in the configuration overrides each colour).
LIGHT = Palette(
    background="#f3f1ea",
    surface="#fffdf8",
    text="#24292f",
    muted="#57606a",
    headline="#14213d",
    accent="#8a1c1c",
    rule="#d8d4c8",
    button="#14213d",
    button_text="#fffdf8",
)
DARK = Palette(
    background="#121417",
    surface="#1c1f24",
    text="#e4e7eb",
    muted="#aab2bd",
    headline="#f3f5f8",
    accent="#f2a39a",
    rule="#3b414a",
    button="#f3f5f8",
    button_text="#1c1f24",
)

# Which colour is ever printed on which: every text colour on both grounds, a button's label
# on its fill. `rule` (dividers) is decoration, not text.
TEXTS = ("text", "muted", "headline", "accent")
GROUNDS = ("surface", "background")


class Clash(NamedTuple):
    """A text colour that does not stand out enough from the ground it is printed on."""

    foreground: str  # the palette's name for it: "muted"
    foreground_colour: str
    background: str
    background_colour: str
    ratio: float

    def describe(self, prefix: str = "") -> str:
        return (
            f"{prefix}{self.foreground} {self.foreground_colour} on {prefix}{self.background} "
            f"{self.background_colour} is {self.ratio:.1f}:1"
        )


def low_contrast(palette: Palette) -> list[Clash]:
    """Each pair of the palette a reader would see below 4.5:1."""
    pairs = [(text, ground) for text in TEXTS for ground in GROUNDS]
    pairs.append(("button_text", "button"))
    found = []
    for fg, bg in pairs:
        fg_colour, bg_colour = getattr(palette, fg), getattr(palette, bg)
        ratio = contrast(fg_colour, bg_colour)
        if ratio < MIN_CONTRAST:
            found.append(Clash(fg, fg_colour, bg, bg_colour, ratio))
    return found


def palette_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Palette))
