"""Every declared dependency is used, and no module leans on another library's private names.

A dependency nobody imports is weight and attack surface for nothing; a private name
(`feedparser.datetimes._parse_date`) can change in any patch release without notice.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Distribution name -> the module it is imported as, where the two differ.
IMPORT_NAMES = {
    "mjml-python": "mjml",
    "email-validator": "email_validator",
    "python-multipart": "multipart",
    "dkimpy": "dkim",
    "pyyaml": "yaml",
    "argon2-cffi": "argon2",
}
# Declared but never imported by our code, each for a reason.
USED_WITHOUT_IMPORT = {
    "sniffio": "httpcore imports it for every lock it makes",
    "httptools": "uvicorn's C HTTP parser, picked up when installed",
    "uvloop": "uvicorn's event loop, picked up when installed",
    "python-multipart": "FastAPI's Form() needs it to parse form bodies",
    "swagger-ui-py": "only its static files are served (digest/web/api_docs.py finds them)",
}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        re.split(r"[<>=!;\[ ]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]
    ]


def our_modules() -> list[Path]:
    return sorted(p for top in ("digest", "subscribers") for p in (ROOT / top).rglob("*.py"))


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    return imports_in(path.read_text(encoding="utf-8"))


def imports_in(source: str) -> list[tuple[int, str, list[str]]]:
    """(line, module, names imported from it) for every absolute import in a module."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in ("digest", "subscribers", "__future__") and top not in sys.stdlib_module_names


def test_every_declared_dependency_is_imported_or_has_a_reason() -> None:
    imported = {m.split(".")[0] for p in our_modules() for _, m, _ in imports(p)}
    unused = [
        name
        for name in declared()
        if IMPORT_NAMES.get(name, name.replace("-", "_")) not in imported
        and name not in USED_WITHOUT_IMPORT
    ]
    assert not unused, f"declared in pyproject.toml, imported nowhere: {unused}"


def test_no_private_name_of_another_library_is_imported() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module} {names}"
        for path in our_modules()
        for line, module, names in private_imports(imports(path))
    ]
    assert not bad, "private names of other libraries:\n" + "\n".join(bad)


def private_imports(
    found: list[tuple[int, str, list[str]]],
) -> list[tuple[int, str, list[str]]]:
    out = []
    for line, module, names in found:
        if third_party(module):
            private = [p for p in module.split(".")[1:] if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                out.append((line, module, private))
    return out


def test_the_walk_finds_a_private_import() -> None:
    source = "from feedparser.datetimes import _parse_date\nimport yaml._private\nimport os._x\n"
    assert private_imports(imports_in(source)) == [
        (1, "feedparser.datetimes", ["_parse_date"]),
        (2, "yaml._private", ["_private"]),
    ]
