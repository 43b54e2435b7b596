"""Every path a command writes goes through digest.outputs: a bad one is one line (exit 2),
before any work, and nothing is left behind. The commands are found by walking the CLI itself,
so a command added tomorrow with an --out/-o/--output option is checked the day it is added."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer.main

from digest.cli import app
from digest.errors import UsageError
from digest.outputs import check_directory, check_file, open_file, write_files

OUTPUT_NAMES = {"--out", "-o", "--output"}


def output_options() -> list[tuple[list[str], Any, str]]:
    """(command path, the click parameter, one of its names) for every output option."""
    found: list[tuple[list[str], Any, str]] = []

    def walk(command: Any, path: list[str]) -> None:
        for param in getattr(command, "params", []):
            for name in sorted(OUTPUT_NAMES & set(getattr(param, "opts", []))):
                found.append((path, param, name))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def required_values(command_path: list[str]) -> list[str]:
    """Placeholders for the command's required arguments and options ("1" parses as an id, a
    number or a text): the output option must fail before they are ever used."""
    command: Any = typer.main.get_command(app)
    for name in command_path:
        command = command.commands[name]
    values: list[str] = []
    for param in command.params:
        if not getattr(param, "required", False):
            continue
        if getattr(param, "param_type_name", "") == "argument":
            values.append("1")
        else:
            values += [param.opts[0], "1"]
    return values


OPTIONS = output_options()


def test_the_walk_finds_the_output_options_we_know() -> None:
    seen = {(" ".join(path), name) for path, _, name in OPTIONS}
    assert {
        ("preview", "--out"),
        ("send report", "--out"),
        ("subscribers export", "--output"),
        ("subscribers export", "-o"),
    } <= seen


def bad_paths(tmp_path: Path, is_directory: bool) -> dict[str, tuple[Path, str]]:
    """What a person gets wrong, and the words that must name it."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    cases = {
        "missing directory": (tmp_path / "no-such-dir" / "out", "does not exist"),
        "a file where a directory is wanted": (a_file / "out", "is not a directory"),
    }
    if is_directory:
        cases["an existing file as the directory"] = (a_file, "is a file, not a directory")
    else:
        cases["an existing directory as the file"] = (tmp_path, "is a directory")
    if Path("/proc/self").exists():  # unwritable even for root: /proc takes no new files
        cases["unwritable"] = (Path("/proc/digest-out"), "cannot write in /proc")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases["read-only directory"] = (locked / "out", "Permission denied")
    return cases


@pytest.mark.parametrize(
    ("path", "param", "name"), OPTIONS, ids=[f"{' '.join(p)} {n}" for p, _, n in OPTIONS]
)
def test_a_bad_output_path_is_one_line_exit_2_before_any_work(
    cli, tmp_path: Path, path: list[str], param: Any, name: str
) -> None:
    is_directory = param.metavar == "DIR"
    for case, (bad, words) in bad_paths(tmp_path, is_directory).items():
        before = sorted(p.name for p in tmp_path.iterdir())
        code, out, err = cli(*path, name, str(bad), *required_values(path))
        assert code == 2, f"{case}: exit {code}, {err}"
        assert err.startswith("error: --"), case
        assert str(bad) in err and words in err, f"{case}: {err}"
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, case
        assert not bad.exists() or bad.is_file() or bad == tmp_path, case
        assert sorted(p.name for p in tmp_path.iterdir()) == before, f"{case}: left a file"
        assert out == "", case


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("the report of yesterday\n")
    with pytest.raises(RuntimeError), open_file(target, "--out") as handle:
        handle.write("half a new rep")
        raise RuntimeError("the database went away")
    assert target.read_text() == "the report of yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]  # no temporary file left


def test_a_finished_write_replaces_the_file_with_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old\n")
    with open_file(target, "--out") as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_files_makes_one_level_of_directory_not_a_tree(tmp_path: Path) -> None:
    written = write_files(tmp_path / "preview", {"a.html": "<p>", "a.txt": "p"}, "--out")
    assert [p.read_text() for p in written] == ["<p>", "p"]
    with pytest.raises(UsageError, match="does not exist"):
        write_files(tmp_path / "typo" / "preview", {"a.html": ""}, "--out")
    assert not (tmp_path / "typo").exists()


def test_without_overwrite_an_existing_file_is_kept(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("mine")
    with pytest.raises(UsageError, match="already exists"):
        write_files(tmp_path, {"digest.toml": "theirs"}, "DIR", overwrite=False)
    assert (tmp_path / "digest.toml").read_text() == "mine"


def test_the_checks_accept_good_paths(tmp_path: Path) -> None:
    assert check_file(tmp_path / "new.csv", "--out") == tmp_path / "new.csv"
    assert check_directory(tmp_path / "new-dir", "--out") == tmp_path / "new-dir"
    assert check_directory(tmp_path, "--out") == tmp_path
    assert list(tmp_path.iterdir()) == []  # checking writes nothing
