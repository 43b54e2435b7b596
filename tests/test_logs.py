"""Log lines of `digest schedule` and `digest run-due`: JSON with the step's fields, or text
with the edition id; configured for one command and undone after it."""

from __future__ import annotations

import json
import logging

import pytest

from digest import logs


def test_json_lines_carry_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    undo = logs.configure("json")
    try:
        logging.getLogger("digest.schedule").info(
            "slot %s send: done", "x", extra={"slot": "2026-11-20T14:00:00+00:00", "edition": 3}
        )
    finally:
        undo()
    [line] = capsys.readouterr().err.splitlines()
    data = json.loads(line)
    assert data["message"] == "slot x send: done" and data["level"] == "info"
    assert (data["slot"], data["edition"], data["logger"]) == (
        "2026-11-20T14:00:00+00:00",
        3,
        "digest.schedule",
    )
    assert "step" not in data


def test_text_lines_name_the_edition_and_steps_can_be_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    undo = logs.configure("text", logging.INFO, steps=False)
    try:
        log = logging.getLogger("digest.schedule")
        log.info("a step", extra={"step": "send", "edition": 4})  # run-due prints these itself
        log.warning("something else", extra={"edition": 4})
    finally:
        undo()
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING digest.schedule: something else [edition 4]")


def test_undo_leaves_logging_as_it_was(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("apscheduler").level)
    logs.configure("json")()
    assert (list(root.handlers), logging.getLogger("apscheduler").level) == (
        before[0],
        before[2],
    )
    logging.getLogger("digest.schedule").info("after")
    assert capsys.readouterr().err == ""
