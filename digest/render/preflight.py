"""Checks on a rendered email before anyone receives it: what a reader would notice."""

from __future__ import annotations

from digest.render.placeholders import PLACEHOLDERS

# Gmail clips HTML bodies past ~102 KB; keep room for substitutions and click-tracking.
CLIP_BUDGET_BYTES = 90 * 1024


def preflight(html: str) -> list[str]:
    """Problems a reader would notice: clipping in Gmail, images without alt text."""
    warnings = []
    size = len(html.encode())
    if size > CLIP_BUDGET_BYTES:
        warnings.append(
            f"HTML is {size / 1024:.0f} KB: Gmail clips messages past ~102 KB "
            f"(budget {CLIP_BUDGET_BYTES // 1024} KB); drop articles or shorten excerpts"
        )
    if "<img" in html and html.count("<img") != html.count(' alt="'):
        warnings.append("an image has no alt text")
    for placeholder in PLACEHOLDERS:
        if placeholder not in html:
            warnings.append(f"the HTML lacks the {placeholder} link")
    return warnings
