"""Editor picks: a TOML (or YAML) file of URLs the editors chose by hand, each with an optional
note, title override and section.

    [[picks]]
    url = "https://meridianreview.example/europe/some-story/"
    note = "Why we think you should read it."
    title = "A better headline"        # optional: replaces the article's own title
    section = "Europe"                 # optional: one of [newsletter] sections
    added_at = 2026-11-18T10:00:00Z    # when it was picked: the week it belongs to

The same in YAML (a file ending in .yaml or .yml): a `picks:` list of mappings with these keys.

Reading is pure (bytes in, picks and problems out). Writing a TOML file keeps its comments and
layout (tomlkit), so editors can keep editing it by hand as well as with `digest picks add/remove`;
writing a YAML file rewrites it (PyYAML keeps no comments). A bad entry is reported by number and
skipped; the good ones still count.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tomlkit
import yaml
from tomlkit.items import AoT, Table

from digest.gather.identity import canonical_url
from digest.gather.items import parse_date
from digest.gather.sanitize import clip, plain, safe_url

MAX_NOTE = 1000
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FIELDS = ("url", "note", "title", "section", "added_at")


class PicksError(Exception):
    """The picks file cannot be read or written; the message names the file and the place."""


@dataclass(frozen=True)
class Pick:
    url: str
    note: str | None = None
    title: str | None = None
    section: str | None = None
    added_at: datetime | None = None


@dataclass(frozen=True)
class PicksFile:
    picks: tuple[Pick, ...]
    problems: tuple[str, ...] = ()


def is_yaml(name: str | Path) -> bool:
    return str(name).lower().endswith((".yaml", ".yml"))


def parse_picks(body: bytes, name: str, sections: tuple[str, ...] = ()) -> PicksFile:
    """Picks from TOML or YAML bytes (by `name`'s suffix); `name` prefixes every problem."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PicksError(f"{name}: not UTF-8 (byte offset {exc.start})") from None
    doc = _yaml(text, name) if is_yaml(name) else _toml(text, name)
    unknown = sorted(set(doc) - {"picks"})
    if unknown:
        raise PicksError(f"{name}: unknown top-level key {unknown[0]!r} (expected [[picks]])")
    entries = doc.get("picks", [])
    if not isinstance(entries, list):
        raise PicksError(f"{name}: 'picks' must be an array of tables ([[picks]])")
    picks: list[Pick] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        try:
            pick = _pick(entry, sections)
        except ValueError as exc:
            problems.append(f"{name}: pick #{number}: {exc}")
            continue
        key = canonical_url(pick.url)
        if key in seen:
            problems.append(f"{name}: pick #{number} repeats pick #{seen[key]} ({pick.url})")
            continue
        seen[key] = number
        picks.append(pick)
    return PicksFile(tuple(picks), tuple(problems))


def _toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PicksError(f"{name}: invalid TOML: {exc}") from None


def _yaml(text: str, name: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise PicksError(f"{name}: invalid YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if isinstance(doc, list):
        return {"picks": doc}
    if not isinstance(doc, dict):
        raise PicksError(f"{name}: expected a 'picks:' list of mappings")
    return {str(k): v for k, v in doc.items()}


def _pick(entry: object, sections: tuple[str, ...]) -> Pick:
    if not isinstance(entry, dict):
        raise ValueError("must be a table with a url")
    extra = sorted(set(entry) - set(FIELDS))
    if extra:
        raise ValueError(f"unknown key {extra[0]!r} (allowed: {', '.join(FIELDS)})")
    url = check_url(entry.get("url"))
    return Pick(
        url=url,
        note=_text(entry, "note", MAX_NOTE),
        title=_text(entry, "title", 300),
        section=check_section(entry.get("section"), sections),
        added_at=_when(entry.get("added_at")),
    )


def check_url(value: object) -> str:
    """An http(s) URL (or a local path, for offline demos); anything else is refused."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("url is missing")
    url = value.strip()
    shown = clip(plain(url), 80)
    if _SCHEME.match(url):
        if not url.lower().startswith("file://") and safe_url(url) is None:
            raise ValueError(f"url {shown!r} is not an http(s) URL")
    elif not url.startswith(("/", ".")) and "." in url.split("/")[0]:
        raise ValueError(f"url {shown!r} has no scheme: write https://{shown}")
    return url


def check_section(value: object, sections: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("section must be a string")
    if sections and value not in sections:
        raise ValueError(f"section {value!r} is not one of {', '.join(sections)}")
    return value


def _text(entry: dict[str, object], key: str, limit: int) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return clip(plain(value), limit) or None


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        value = parse_date(value) or value
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise ValueError("added_at must be a date-time like 2026-11-18T10:00:00Z")


def load_picks(path: Path, sections: tuple[str, ...] = ()) -> PicksFile:
    try:
        return parse_picks(path.read_bytes(), str(path), sections)
    except FileNotFoundError:
        return PicksFile(())
    except OSError as exc:
        raise PicksError(f"{path}: cannot read: {exc.strerror or exc}") from None


def add_pick(path: Path, pick: Pick) -> bool:
    """Add `pick`, or update the pick with the same (canonical) URL. True when it was new."""
    if is_yaml(path):
        return _yaml_add(path, pick)
    doc = _document(path)
    table = _find(doc, pick.url)
    new = table is None
    if table is None:
        table = tomlkit.table()
        table["url"] = pick.url
        _aot(doc).append(table)
    for key in ("note", "title", "section"):
        value = getattr(pick, key)
        if value is not None:
            table[key] = value
    if new or "added_at" not in table:
        table["added_at"] = pick.added_at or datetime.now(UTC)
    _write(path, tomlkit.dumps(doc))
    return new


def remove_pick(path: Path, url: str) -> bool:
    """Remove the pick with this (canonical) URL. False when there was none."""
    if is_yaml(path):
        return _yaml_remove(path, url)
    doc = _document(path)
    picks = _aot(doc)
    key = canonical_url(url)
    for i, table in enumerate(picks):
        if canonical_url(str(table.get("url", ""))) == key:
            del picks[i]
            if not len(picks):
                del doc["picks"]  # an empty array of tables would be written as `picks = []`
            _write(path, tomlkit.dumps(doc))
            return True
    return False


def _document(path: Path) -> tomlkit.TOMLDocument:
    if not path.exists():
        doc = tomlkit.document()
        doc.add(
            tomlkit.comment("Editor picks: `digest picks add URL --note TEXT` or edit by hand.")
        )
        return doc
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise PicksError(f"{path}: cannot edit: {exc}") from None


def _aot(doc: tomlkit.TOMLDocument) -> AoT:
    if "picks" not in doc:
        doc.append("picks", tomlkit.aot())
    picks = doc["picks"]
    if isinstance(picks, list) and not len(picks):  # `picks = []` written by hand
        del doc["picks"]
        doc.append("picks", tomlkit.aot())
        picks = doc["picks"]
    if not isinstance(picks, AoT):
        raise PicksError("'picks' must be an array of tables ([[picks]])")
    return picks


def _find(doc: tomlkit.TOMLDocument, url: str) -> Table | None:
    key = canonical_url(url)
    for table in _aot(doc):
        if canonical_url(str(table.get("url", ""))) == key:
            found: Table = table
            return found
    return None


def _yaml_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        doc = _yaml(path.read_text(encoding="utf-8-sig"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise PicksError(f"{path}: cannot edit: {exc}") from None
    entries = doc.get("picks") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PicksError(f"{path}: 'picks' must be a list of mappings")
    return entries


def _yaml_add(path: Path, pick: Pick) -> bool:
    entries = _yaml_entries(path)
    key = canonical_url(pick.url)
    entry = next((e for e in entries if canonical_url(str(e.get("url", ""))) == key), None)
    new = entry is None
    if entry is None:
        entry = {"url": pick.url, "added_at": pick.added_at or datetime.now(UTC)}
        entries.append(entry)
    for field in ("note", "title", "section"):
        if getattr(pick, field) is not None:
            entry[field] = getattr(pick, field)
    _write_yaml(path, entries)
    return new


def _yaml_remove(path: Path, url: str) -> bool:
    entries = _yaml_entries(path)
    key = canonical_url(url)
    kept = [e for e in entries if canonical_url(str(e.get("url", ""))) != key]
    if len(kept) == len(entries):
        return False
    _write_yaml(path, kept)
    return True


def _write_yaml(path: Path, entries: list[dict[str, Any]]) -> None:
    body = yaml.safe_dump({"picks": entries}, sort_keys=False, allow_unicode=True)
    _write(path, "# Editor picks: `digest picks add URL --note TEXT` or edit by hand.\n" + body)


def _write(path: Path, text: str) -> None:
    """Write to a temporary file and rename: a crash never leaves half a picks file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise PicksError(f"{path}: cannot write: {exc.strerror or exc}") from None
