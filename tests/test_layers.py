"""The layout's rules (README "Layout", docs/design.md §2), read from every module's imports.

Imports point down the flow and never back up: the faces (cli, web) on top, the store at the
bottom, the pure stages (gather, rank, render) knowing neither the database nor the settings,
backends carrying messages and nothing else, and `subscribers/` free of digest. Each violation is
reported with its file and line, so a wrong import is found where it was written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACES = ("cli", "web")
# A face may start another face: `digest serve` is how the CLI starts the web app.
FACE_ENTRY_POINTS = {("digest/cli/serve.py", "web")}
# (importing part, imported part): never allowed. A part is a package or top-level module of
# digest ("send", "rank", "config", ...); "subscribers" is the consent domain beside digest.
FORBIDDEN = {
    **{
        (stage, below): "a pure stage takes plain values, never the database or Settings"
        for stage in ("gather", "rank", "render")
        for below in ("store", "config")
    },
    **{
        ("backends", part): "backends carry messages; nothing else"
        for part in ("store", "ledger", "send", "render", "subscribers")
    },
    ("ledger", "send"): "the ledger sits below the engine that drives it",
}


@dataclass(frozen=True)
class Edge:
    path: str  # relative to the repository root
    line: int
    source: str  # the importing part
    target: str  # the imported part
    module: str  # the imported module, as written (resolved when relative)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """digest.send.claims -> "send"; digest.config -> "config"; subscribers.x -> "subscribers"."""
    names = module.split(".")
    if names[0] == "subscribers":
        return "subscribers"
    if names[0] != "digest":
        return None
    return names[1] if len(names) > 1 else "digest"


def imported_modules(tree: ast.Module, here: str, is_package: bool) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".") if is_package else here.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield node.lineno, base
            for alias in node.names:  # `from digest import send` imports digest.send
                if part_of(base) == "digest" and alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"


def edges() -> list[Edge]:
    found = []
    for top in ("digest", "subscribers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "versions" in path.parts:  # Alembic revisions import nothing of ours that matters
                continue
            here = module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            source = part_of(here)
            assert source is not None
            for line, module in imported_modules(tree, here, path.name == "__init__.py"):
                target = part_of(module)
                if target is None or target == source or target == "digest":
                    continue
                if module.split(".")[-1] in {"USER_AGENT", "__version__"}:
                    continue
                rel = str(path.relative_to(ROOT))
                found.append(Edge(rel, line, source, target, module))
    return found


EDGES = edges()


def test_the_walk_sees_the_imports_it_must() -> None:
    """The rules below mean nothing if the walk misses imports: spot-check known ones."""
    pairs = {(e.source, e.target) for e in EDGES}
    assert ("send", "ledger") in pairs
    assert ("cli", "send") in pairs
    assert ("edition", "gather") in pairs


def test_subscribers_imports_nothing_from_digest() -> None:
    bad = [e for e in EDGES if e.source == "subscribers"]
    assert not bad, describe(
        bad, "subscribers/ is the consent domain: it imports nothing of digest"
    )


@pytest.mark.parametrize(("source", "target"), sorted(FORBIDDEN))
def test_forbidden_imports(source: str, target: str) -> None:
    bad = [e for e in EDGES if (e.source, e.target) == (source, target)]
    assert not bad, describe(bad, f"{source} -> {target}: {FORBIDDEN[(source, target)]}")


def test_only_the_entry_point_imports_a_face() -> None:
    bad = [
        e
        for e in EDGES
        if e.target in FACES
        and e.path != "digest/__main__.py"
        and (e.path, e.target) not in FACE_ENTRY_POINTS
    ]
    assert not bad, describe(bad, "the core never imports a face (cli, web); faces call the core")


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for e in EDGES:
        graph.setdefault(e.source, set()).add(e.target)
    cycles = find_cycles(graph)
    messages = []
    for cycle in cycles:
        hops = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        where = [
            describe_one(next(e for e in EDGES if (e.source, e.target) == hop)) for hop in hops
        ]
        messages.append(" -> ".join([*cycle, cycle[0]]) + "\n    " + "\n    ".join(where))
    assert not cycles, "import cycles between digest's packages:\n" + "\n".join(messages)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one part, as one cycle through it."""
    cycles = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            cycles.append(cycle_in(graph, component))
    return cycles


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    path, seen = [start], {start}
    while True:
        nxt = min(n for n in graph[path[-1]] if n in component)
        if nxt in seen:
            return path[path.index(nxt) :]
        path.append(nxt)
        seen.add(nxt)


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def describe_one(e: Edge) -> str:
    return f"{e.path}:{e.line}: imports {e.module}"


def describe(bad: list[Edge], rule: str) -> str:
    return rule + "\n  " + "\n  ".join(describe_one(e) for e in bad)
