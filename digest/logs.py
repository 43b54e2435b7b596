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
from datetime import UTC, datetime

FORMATS = ("text", "json")
# The extra fields a line may carry (logger.info(..., extra={...})), in this order.
FIELDS = ("job", "slot", "step", "state", "edition", "told")
_QUIET = ("apscheduler",)  # its own INFO lines ("Running job ...") say nothing ours do not


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


def configure(fmt: str, level: int = logging.INFO) -> None:
    """Send digest's log records to stderr in `fmt` (text or json), from `level` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
