"""Log lines for the long-running and unattended commands (`digest schedule`, `digest run-due`):
plain text for a terminal, or one JSON object per line (`digest --log-format json ...`) for a
log collector. Every line of a schedule step carries the slot, the step, its state and the
edition id as fields of their own, so a collector can find "every run of edition 12" without
parsing messages.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

FORMATS = ("text", "json")
# The extra fields a line may carry (logger.info(..., extra={...})), in this order.
FIELDS = ("job", "slot", "step", "state", "edition", "told")
# Libraries whose lines say nothing ours do not: APScheduler's "Running job ..." and, while
# one job runs long (a big send), "maximum number of running instances reached" for the
# minute's watch every minute; Alembic's "Context impl ...". Their errors still show.
QUIET = {"apscheduler": logging.ERROR, "alembic": logging.WARNING}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        edition = getattr(record, "edition", None)
        return text + (f" [edition {edition}]" if edition is not None else "")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (not when configured)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _NoSteps(logging.Filter):
    """`digest run-due` prints each step itself; its text log keeps only the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "step")


def configure(fmt: str, level: int = logging.INFO, *, steps: bool = True) -> Callable[[], None]:
    """Log digest's records to stderr in `fmt` (text or json) from `level` up (`steps`:
    with the schedule's step lines). Returns the undo, for a command run in-process."""
    handler = _Stderr()
    handler.setLevel(level)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if not steps:
        handler.addFilter(_NoSteps())
    root = logging.getLogger()
    before = {name: logging.getLogger(name).level for name in ("", *QUIET)}
    root.addHandler(handler)
    if root.level > level:
        root.setLevel(level)
    for name, floor in QUIET.items():
        logging.getLogger(name).setLevel(max(level, floor))

    def undo() -> None:
        root.removeHandler(handler)
        for name, old in before.items():
            logging.getLogger(name).setLevel(old)

    return undo
