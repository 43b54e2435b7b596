"""The demo default: one RFC 5322 .eml file per recipient in a folder. No network, no key.

outbox_dir/edition-N/00000042.eml        an edition, one file per ledger row
outbox_dir/edition-N-tests/...eml        `digest send --test-to` copies of it
outbox_dir/transactional/...eml          confirmation emails and other notes to one person

The messages of a batch are written from one template (backends.mimetemplate): a file each, in
a few tens of microseconds, where the email package takes milliseconds per message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from digest.backends.base import Batch, EmailBackend, RecipientStatus, delivery_ids
from digest.backends.mimetemplate import messages

TRANSACTIONAL = "transactional"


class OutboxBackend(EmailBackend):
    name: ClassVar[str] = "outbox"
    max_batch: ClassVar[int] = 1000
    # A few batches at once: while one thread waits on the kernel writing a file (the larger
    # part of a message's cost), another writes the next message.
    max_concurrency: ClassVar[int] = 4

    def __init__(self, directory: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.directory = directory
        self.clock = clock or (lambda: datetime.now(UTC))

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(
        self,
        edition_id: int,
        delivery_id: int,
        test_batch: str | None = None,
        *,
        transactional: bool = False,
    ) -> Path:
        folder = self._folder(edition_id, test_batch, transactional)
        return folder / _file_name(delivery_id, test_batch, transactional)

    def _folder(self, edition_id: int, test_batch: str | None, transactional: bool) -> Path:
        if transactional:
            return self.directory / TRANSACTIONAL
        if test_batch is not None:  # `digest send --test-to`: beside the edition, never in it
            return self.directory / f"edition-{edition_id}-tests"
        return self.directory / f"edition-{edition_id}"

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        test_batch = batch.batch_id[:12] if batch.test or batch.transactional else None
        folder = self._folder(batch.edition_id, test_batch, batch.transactional)
        folder.mkdir(parents=True, exist_ok=True)
        statuses = []
        ids = delivery_ids(batch.recipients)
        for delivery_id, written in zip(ids, messages(batch, self.clock()), strict=True):
            name = _file_name(delivery_id, test_batch, batch.transactional)
            path = os.path.join(folder, name)
            _write(path, written.data)
            statuses.append(RecipientStatus(delivery_id, "accepted", path))
        return statuses


def _file_name(delivery_id: int, test_batch: str | None, transactional: bool) -> str:
    if transactional:  # named by the send's id (no address in a file name)
        return f"{delivery_id:08d}-{test_batch or 'mail'}.eml"
    if test_batch is not None:
        return f"{test_batch}-{delivery_id}.eml"
    return f"{delivery_id:08d}.eml"


def _write(path: str, data: bytes) -> None:
    """Write then rename: a crash never leaves half a message that looks sent."""
    tmp = path[: -len(".eml")] + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)
