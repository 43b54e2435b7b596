"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Excel, LibreOffice and Google Sheets treat a cell that starts with `=`, `+`, `-` or `@` (and,
after their own trimming, a tab or carriage return) as a formula: a subscriber named
`=HYPERLINK("https://evil.example","Call support")` becomes a link in the operator's sheet, and
worse formulas run commands (CSV injection, OWASP). Every CSV digest writes (`subscribers
export`, `send report`) passes each cell through `csv_cell`, which puts an apostrophe in front
of such a cell: spreadsheets show the text after it as it is.

The subscriber export must import back unchanged, so the guard is reversible: `csv_value`
(used by the import) takes it off again. A cell that already starts with an apostrophe gets a
second one, so `csv_value(csv_cell(x)) == x` for every text.
"""

from __future__ import annotations

# What a spreadsheet reads as the start of a formula, and the guard's own character.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


def csv_cell(value: str) -> str:
    """`value` as a cell no spreadsheet runs: guarded with an apostrophe when it needs it."""
    return GUARD + value if _needs_guard(value) else value


def csv_value(cell: str) -> str:
    """The value a guarded cell stands for (the inverse of csv_cell); other text as it is."""
    return cell[1:] if cell.startswith(GUARD) and _needs_guard(cell[1:]) else cell


def _needs_guard(value: str) -> bool:
    """A formula start, also after leading white space (some spreadsheets trim it first); or
    the guard itself, so that a value starting with an apostrophe survives the round trip."""
    return value.startswith((*FORMULA_STARTS, GUARD)) or value.lstrip().startswith(FORMULA_STARTS)
