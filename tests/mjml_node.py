"""The official MJML compiler (npm `mjml` on node), for tests and benchmarks.

tests/services.sh installs a pinned version into tests/.node/ (ignored by git) and writes the
path of its `mjml` command to tests/.services.env as DIGEST_TEST_MJML. `compile_node` compiles
MJML sources with it; the test beside mjml-python is tests/render/test_mjml_node.py, and
bench/render.py imports this module (`from tests.mjml_node import compile_node, installed`) to
time node MJML on the same MJML.

One node process per call: MJML on stdin, HTML on stdout, as `mjml -i -s` does, but through the
package's own `mjml2html()` so that several sources pay node's start-up (~1 s) once, and so that
`runs` can time the compiler itself inside node (the figure a benchmark wants), not the start-up.
The options are mjml-python's in digest.render.email.compile_mjml: no comments, no web fonts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.services_env import services

ENV = "DIGEST_TEST_MJML"

# stdin: {"sources": [...], "runs": N}; stdout: [{"html", "errors", "ms"}, ...]. Each source is
# compiled once for its HTML, then `runs` more times, timed (milliseconds each).
_SCRIPT = r"""
const mjml2html = require(process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const options = { keepComments: false, fonts: {}, validationLevel: "soft" };
const out = input.sources.map((source) => {
  const first = mjml2html(source, options);
  const ms = [];
  for (let i = 0; i < input.runs; i++) {
    const start = process.hrtime.bigint();
    mjml2html(source, options);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { html: first.html, errors: first.errors.map((e) => e.formattedMessage), ms };
});
process.stdout.write(JSON.stringify(out));
"""


@dataclass(frozen=True)
class NodeResult:
    html: str
    errors: list[str]  # MJML validation messages (node validates; mjml-python does not)
    ms: list[float]  # one compile time per timed run, measured inside node


def installed() -> Path | None:
    """The `mjml` command tests/services.sh installed (or DIGEST_TEST_MJML names), if any."""
    value = services().get(ENV)
    return Path(value) if value and Path(value).exists() else None


def package_dir(command: Path) -> Path:
    """node_modules/.bin/mjml -> node_modules/mjml (the package `require` loads)."""
    return command.resolve().parent.parent


def version(command: Path) -> str:
    return str(json.loads((package_dir(command) / "package.json").read_text())["version"])


def node_binary() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if not found:
        raise RuntimeError("node is not on PATH (tests/services.sh installs Debian's nodejs)")
    return found


def compile_node(
    sources: Sequence[str], command: Path, *, runs: int = 0, timeout: float = 120.0
) -> list[NodeResult]:
    """Each MJML source compiled by node MJML; `runs` timed compiles of each after the first."""
    payload = json.dumps({"sources": list(sources), "runs": runs})
    result = subprocess.run(
        [node_binary(), "-e", _SCRIPT, str(package_dir(command))],
        input=payload,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env={**os.environ, "NODE_ENV": "production"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"node MJML failed ({result.returncode}): {result.stderr.strip()}")
    return [NodeResult(r["html"], r["errors"], r["ms"]) for r in json.loads(result.stdout)]
