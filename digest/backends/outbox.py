"""The demo default: one RFC 5322 .eml file per recipient in a folder. No network, no key.

outbox_dir/edition-N/00000042.eml        an edition, one file per ledger row
outbox_dir/edition-N-tests/...eml        `digest send --test-to` copies of it
outbox_dir/transactional/...eml          confirmation emails and other notes to one person
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from digest.backends.base import Batch, EmailBackend, RecipientStatus
from digest.backends.mime import build_message

TRANSACTIONAL = "transactional"


class OutboxBackend(EmailBackend):
    name: ClassVar[str] = "outbox"
    max_batch: ClassVar[int] = 1000

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
        if transactional:  # named by the send's id (no address in a file name)
            return self.directory / TRANSACTIONAL / f"{delivery_id:08d}-{test_batch or 'mail'}.eml"
        if test_batch is not None:  # `digest send --test-to`: beside the edition, never in it
            return (
                self.directory / f"edition-{edition_id}-tests" / f"{test_batch}-{delivery_id}.eml"
            )
        return self.directory / f"edition-{edition_id}" / f"{delivery_id:08d}.eml"

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        statuses = []
        now = self.clock()
        for recipient in batch.recipients:
            test_batch = batch.batch_id[:12] if batch.test or batch.transactional else None
            path = self.path_for(
                batch.edition_id,
                recipient.delivery_id,
                test_batch,
                transactional=batch.transactional,
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            message = build_message(batch, recipient, now)
            # Write then rename: a crash never leaves half a message that looks sent.
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(message.as_bytes())
            os.replace(tmp, path)
            statuses.append(RecipientStatus(recipient.delivery_id, "accepted", str(path)))
        return statuses
