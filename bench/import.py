"""Import of a 100,000-row subscriber CSV (goal: <= 10 s), through `digest subscribers import`.

Writes its own CSV (50 domains, a mix of statuses and sections, every active row with consent
evidence) and a fresh SQLite database in a temp directory, then times, as a user would see it:
  1. the first import (100,000 rows added), end to end in a subprocess;
  2. the same file again (nothing changes: the idempotent re-run);
  3. the in-process parts of the first import: reading + validating, and writing.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROWS = 100_000
GOAL_S = 10.0
SECTIONS = ["Middle East", "Europe", "Asia", "Military Industrial Complex", "Diplomacy"]
SECRET = "bench-secret-key-not-for-production"


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(42)
    domains = [f"mail{i}.example.com" for i in range(45)] + [
        "gmail.example",
        "yahoo.example",
        "outlook.example",
        "proton.example",
        "fastmail.example",
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "sections", "status", "source", "consented_at"])
        for i in range(rows):
            status = rng.choices(["active", "pending", "unsubscribed"], [90, 7, 3])[0]
            chosen = rng.sample(SECTIONS, rng.randint(0, 3))
            when = start + timedelta(minutes=rng.randint(0, 600_000))
            writer.writerow(
                [
                    f"reader.{i}@{rng.choice(domains)}",
                    f"Reader {i}",
                    ";".join(chosen),
                    status,
                    "website signup form",
                    when.isoformat().replace("+00:00", "Z"),
                ]
            )


def cli_import(env: dict[str, str], path: Path) -> tuple[float, str]:
    digest = Path(sys.executable).parent / "digest"
    started = time.perf_counter()
    result = subprocess.run(
        [str(digest), "subscribers", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"import failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout.strip()


def in_process(db: Path, path: Path) -> tuple[float, float]:
    from digest.store.db import open_database, session_factory, transaction
    from subscribers.importer import Options, import_rows, read_rows, read_text

    factory = session_factory(open_database(f"sqlite:///{db}"))
    options = Options(tuple(SECTIONS), datetime.now(UTC))
    started = time.perf_counter()
    rows, errors = read_rows(read_text(path), options)
    parsed = time.perf_counter()
    assert not errors and len(rows) == ROWS
    with transaction(factory) as session:
        import_rows(session, rows, options=options, keys=[SECRET], label=path.name)
    written = time.perf_counter()
    return parsed - started, written - parsed


def main() -> None:
    from tests.send_helpers import digest_env

    with tempfile.TemporaryDirectory(prefix="digest-bench-import-") as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "subscribers.csv"
        write_csv(path, ROWS)
        env = digest_env(
            {
                "DIGEST_CONFIG": str(ROOT / "digest.toml"),
                "DIGEST_DATABASE__URL": f"sqlite:///{tmpdir / 'cli.db'}",
                "DIGEST_SECRET_KEY": SECRET,
            }
        )
        size_mb = path.stat().st_size / 1e6
        print(f"{ROWS:,} rows, {size_mb:.1f} MB CSV, SQLite in {tmpdir}")
        first, report = cli_import(env, path)
        print(f"  first import (CLI, end to end): {first:6.2f} s  [{report}]")
        again, report = cli_import(env, path)
        print(f"  same file again (CLI):          {again:6.2f} s  [{report}]")
        parse_s, write_s = in_process(tmpdir / "inproc.db", path)
        print(
            f"  in process: read+validate {parse_s:.2f} s ({ROWS / parse_s:,.0f} rows/s), "
            f"write {write_s:.2f} s ({ROWS / write_s:,.0f} rows/s)"
        )
        verdict = "OK" if first <= GOAL_S else "MISSED"
        print(
            f"  goal <= {GOAL_S:.0f} s for the first import: {verdict} "
            f"({first / GOAL_S:.2f} of the budget)"
        )


if __name__ == "__main__":
    main()
