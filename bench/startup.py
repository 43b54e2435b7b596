"""Start-up benchmark: how long a person waits for `digest` to answer (README "Development").

Goals: `digest --help` and every `digest COMMAND --help` <= 0.3 s; a command that opens the
database <= 0.6 s. Each figure is the best of RUNS runs of the installed `digest` script, a new
process each time (a person's wait: interpreter start, imports, the work), on a SQLite database
made and migrated beforehand, with the demo's subscribers imported. The commands' help pages are
found by walking the CLI itself, so a new command is measured the day it is added.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELP_GOAL_S = 0.3
DATABASE_GOAL_S = 0.6
RUNS = 5
# Commands that open the database and print something a person asked for.
DATABASE_COMMANDS = (
    ("subscribers", "show", "amara.okafor@example.com"),
    ("subscribers", "list"),
    ("edition", "list"),
    ("articles", "list", "--all"),
)


def digest_command() -> list[str]:
    script = Path(sys.executable).parent / "digest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "digest"]


def best_of(args: list[str], env: dict[str, str], runs: int = RUNS) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `runs` runs: the wall time is what a person waits;
    the CPU time beside it shows how much of that a busy machine added."""
    best = (float("inf"), float("inf"))
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (elapsed, cpu))
    return best


def figure(label: str, seconds: tuple[float, float], goal: float) -> str:
    wall, cpu = seconds
    return f"{label}: {wall:.3f} s ({cpu:.3f} s CPU)   (goal <= {goal} s): {verdict(wall, goal)}"


def help_pages() -> list[list[str]]:
    """Every command path of the CLI (groups and their commands), from the click tree."""
    import typer.main

    from digest.cli import app

    found: list[list[str]] = []

    def walk(group: Any, path: list[str]) -> None:
        for name, command in group.commands.items():
            if getattr(command, "hidden", False):
                continue
            found.append([*path, name])
            if hasattr(command, "commands"):
                walk(command, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def verdict(seconds: float, goal: float) -> str:
    return "OK" if seconds <= goal else "NOT MET"


def main() -> None:
    digest = digest_command()
    work = Path(tempfile.mkdtemp(prefix="digest-bench-startup-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_CONFIG": str(ROOT / "digest.toml"),
        "DIGEST_DATABASE__URL": f"sqlite:///{work / 'digest.db'}",
        "DIGEST_DELIVERY__OUTBOX_DIR": str(work / "outbox"),
        "DIGEST_SECRET_KEY": "bench-only-not-a-secret",
        "COLUMNS": "120",
    }
    try:
        subprocess.run(
            [*digest, "subscribers", "import", str(ROOT / "examples" / "subscribers.csv")],
            env=env, cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        print(figure("digest --help", best_of([*digest, "--help"], env), HELP_GOAL_S), flush=True)
        pages = help_pages()
        timed = [(best_of([*digest, *page, "--help"], env), page) for page in pages]
        (slowest, cpu), page = max(timed)
        median = sorted(wall for (wall, _), _ in timed)[len(timed) // 2]
        print(
            f"digest COMMAND --help, {len(pages)} commands: slowest {slowest:.3f} s ({cpu:.3f} s "
            f"CPU; digest {' '.join(page)} --help), median {median:.3f} s   (goal <= "
            f"{HELP_GOAL_S} s each): {verdict(slowest, HELP_GOAL_S)}",
            flush=True,
        )
        for command in DATABASE_COMMANDS:
            label = f"digest {' '.join(command)}"
            print(figure(label, best_of([*digest, *command], env), DATABASE_GOAL_S), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
