"""What `make test` started: tests/.services.env (written by tests/services.sh), overridden by
DIGEST_TEST_* variables. Read by the test fixtures and by the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent / ".services.env"


def services() -> dict[str, str]:
    found: dict[str, str] = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if key and value:
                found[key] = value
    found.update({k: v for k, v in os.environ.items() if k.startswith("DIGEST_TEST_")})
    return found
