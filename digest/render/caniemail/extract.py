"""Regenerate `css.json` from caniemail's `_features/css-*.md` files (run by hand, not at runtime).

    python -m digest.render.caniemail.extract [FEATURES_DIR]

FEATURES_DIR defaults to docs/caniemail/features, the copy kept in this repository (MIT, its
LICENSE beside it); point it at a newer caniemail checkout's `_features` to update.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("css.json")
# (caniemail family, platform) -> our client name
CLIENTS = {("gmail", "desktop-webmail"): "gmail", ("outlook", "windows"): "outlook-windows"}


def frontmatter(text: str) -> dict[str, str]:
    """The YAML-ish head: `title`, and `stats`/`notes_by_num` as JSON5-ish blocks."""
    head = text.split("\n---", 1)[0]
    fields: dict[str, str] = {}
    title = re.search(r'^title:\s*"(.*)"\s*$', head, re.MULTILINE)
    fields["title"] = title.group(1) if title else ""
    for name in ("stats", "notes_by_num"):
        found = re.search(rf"^{name}:\s*\{{", head, re.MULTILINE)
        fields[name] = _braced(head, found.end() - 1) if found else "{}"
    return fields


def _braced(text: str, start: int) -> str:
    """The `{...}` block opening at `start` (braces inside quoted strings do not count)."""
    depth, quoted = 0, False
    for end in range(start, len(text)):
        char = text[end]
        if char == '"' and text[end - 1] != "\\":
            quoted = not quoted
        elif not quoted and char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return text[start : end + 1]
    raise ValueError("unbalanced braces")


def loose_json(block: str) -> Any:
    """caniemail's blocks: unquoted keys, missing and trailing commas; otherwise JSON."""
    quoted = re.sub(r"^(\s*)([A-Za-z][\w-]*)\s*:", r'\1"\2":', block, flags=re.M)
    comma = re.sub(r'(["}\]])(\s*\n\s*")', r"\1,\2", quoted)  # some entries lack the comma
    comma = re.sub(r",(\s*,)+", ",", comma)
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", comma))


def newest(results: dict[str, str]) -> tuple[str, list[str]]:
    """The last listed result ('y', 'n', 'a', 'u') and its note numbers."""
    value = list(results.values())[-1]
    letter, *notes = value.split()
    return letter, [n.lstrip("#") for n in notes]


def feature(path: Path) -> dict[str, Any] | None:
    fields = frontmatter(path.read_text(encoding="utf-8"))
    stats, notes = loose_json(fields["stats"]), loose_json(fields["notes_by_num"])
    support: dict[str, dict[str, Any]] = {}
    for (family, platform), client in CLIENTS.items():
        results = stats.get(family, {}).get(platform)
        if results:
            letter, refs = newest(results)
            support[client] = {"support": letter, "notes": [notes.get(r, "") for r in refs]}
    if not support:
        return None
    return {"title": fields["title"], "slug": path.stem, "support": support}


def main(features: Path) -> None:
    data = {}
    for path in sorted(features.glob("css-*.md")):
        found = feature(path)
        if found:
            data[path.stem] = found
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{len(data)} CSS features -> {OUT}")


DEFAULT_FEATURES = Path(__file__).resolve().parents[3] / "docs" / "caniemail" / "features"

if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FEATURES)
