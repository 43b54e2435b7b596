"""Where a command writes a person's files: every `--out`/`-o`/`--output` path, and `digest init`.

One helper for all of them, so that a bad path is always one line naming the option, the path
and what is wrong (exit 2), and always before any work is done: the CLI checks the path while it
parses the command line. Writing goes through here too: a file is written beside its target and
renamed over it at the end, so a failed or interrupted write never leaves half a file where a
good one was. Directories are created one level deep at most: a mistyped parent
(`/srv/digets/preview`) is an error, not a new tree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from digest.errors import UsageError


def check_file(path: Path, option: str) -> Path:
    """`path` can be written as a file: its directory exists and takes new files, and it is not
    a directory itself. An existing file is replaced (as a shell's `>` would)."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; name a file in it")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file is read-only")
    _check_writable_dir(path.parent, path, option)
    return path


def check_directory(path: Path, option: str) -> Path:
    """`path` is a directory that takes new files, or can be made one (its parent exists)."""
    if path.is_dir():
        _check_writable_dir(path, path, option)
    elif path.exists():
        raise UsageError(f"{option} {path}: is a file, not a directory")
    else:
        _check_writable_dir(path.parent, path, option)
    return path


def _check_writable_dir(directory: Path, path: Path, option: str) -> None:
    where = directory if str(directory) else Path(".")
    if not where.exists():
        raise UsageError(f"{option} {path}: the directory {where} does not exist")
    if not where.is_dir():
        raise UsageError(f"{option} {path}: {where} is not a directory")
    # Ask the file system itself (permissions, read-only mounts, /proc): create and remove a file.
    try:
        fd, probe = tempfile.mkstemp(prefix=".digest-probe-", dir=where)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in {where}: {_reason(exc)}") from None
    os.close(fd)
    os.unlink(probe)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:  # an existing directory that refuses files (/proc)
        return "the file system does not take new files there"
    return exc.strerror or str(exc)


@contextmanager
def open_file(path: Path, option: str, *, overwrite: bool = True) -> Iterator[TextIO]:
    """A text file to write, which becomes `path` only when the block ends without an error.
    With `overwrite` false an existing `path` is an error, checked again at the last moment
    (the file is linked into place, which fails if another process made one meanwhile)."""
    check_file(path, option)
    if not overwrite and path.exists():
        raise UsageError(f"{option} {path}: already exists; it is not overwritten")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would have made it
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
            os.unlink(temporary)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(exc, FileExistsError):
            raise UsageError(f"{option} {path}: already exists; it is not overwritten") from None
        if isinstance(exc, OSError):
            raise UsageError(f"{option} {path}: cannot write there: {_reason(exc)}") from None
        raise


def write_files(
    directory: Path, files: Mapping[str, str], option: str, *, overwrite: bool = True
) -> list[Path]:
    """Each named text file in `directory` (made if missing), each written whole or not at all."""
    check_directory(directory, option)
    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {directory}: cannot create it: {_reason(exc)}") from None
    written = []
    for name, text in files.items():
        target = directory / name
        with open_file(target, option, overwrite=overwrite) as handle:
            handle.write(text)
        written.append(target)
    return written


def _umask() -> int:
    """The process's umask (read by setting it, the only way POSIX offers)."""
    current = os.umask(0)
    os.umask(current)
    return current
