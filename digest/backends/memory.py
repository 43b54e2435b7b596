"""An in-process backend for tests: records every batch; can be told to answer otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from digest.backends.base import Batch, EmailBackend, RecipientStatus

Responder = Callable[[Batch], list[RecipientStatus]]


class MemoryBackend(EmailBackend):
    name: ClassVar[str] = "memory"
    max_batch: ClassVar[int] = 1000

    def __init__(self, responder: Responder | None = None) -> None:
        self.batches: list[Batch] = []
        self.responder = responder

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        self.batches.append(batch)
        if self.responder is not None:
            return self.responder(batch)
        return [
            RecipientStatus(r.delivery_id, "accepted", f"mem-{r.delivery_id}")
            for r in batch.recipients
        ]

    @property
    def sent_to(self) -> list[str]:
        return [r.email for b in self.batches for r in b.recipients]
