"""Many batches in flight at once: a provider answers a request of 1000 recipients in a few
hundred milliseconds, and a worker that waited for each answer before sending the next would
spend its time waiting ([delivery] concurrency).

The claiming thread claims and composes batches (tokens, SQL: CPU) and hands them over; `width`
sender threads each take the next one and deliver it (the ledger's discipline for that batch:
commit `submitted`, call the provider, record the answer; docs/design.md §3), waiting on the
network with the interpreter lock released. The claiming thread reserves a slot before each
claim: at most `width` batches are being sent and one more is composed and waiting, so a
sender that finishes finds the next batch ready. A waiting batch is only `claimed` (never
`submitted`) until a sender takes it, so a crash leaves it safe to send again. With width 1
everything runs inline, in one thread.

When sending fails for good, the batches still waiting are handed to `release`, the batches
being sent finish, and the failure is raised in the claiming thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

Job = TypeVar("Job")
_STOP = object()


class InFlight(Generic[Job]):
    def __init__(
        self, deliver: Callable[[Job], None], release: Callable[[Job], None], width: int
    ) -> None:
        self.deliver = deliver
        self.release = release
        self.width = max(1, width)
        self.error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue()
        # Batches claimed and not yet finished: one per sender, and one composed ahead.
        self._slots = threading.Semaphore(self.width + 1 if self.width > 1 else 1)
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> InFlight[Job]:
        if self.width > 1:
            for n in range(self.width):
                thread = threading.Thread(target=self._run, name=f"digest-sender-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def reserve(self) -> None:
        """Wait for a free slot; call before claiming a batch."""
        self._slots.acquire()

    def unreserve(self) -> None:
        """Give the slot back: nothing was claimed."""
        self._slots.release()

    def put(self, job: Job) -> None:
        """Send `job`, in the reserved slot (inline with width 1, else by a sender thread)."""
        if not self._threads:
            try:
                self.deliver(job)
            finally:
                self._slots.release()
            return
        self._queue.put(job)

    def busy(self) -> bool:
        """Some batch is waiting or being sent."""
        return self._queue.unfinished_tasks > 0

    def drain(self) -> None:
        """Wait until every batch handed over was sent."""
        if self._threads:
            self._queue.join()
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _STOP:
                    return
                if self.error is None:
                    self.deliver(job)  # type: ignore[arg-type]
                else:
                    self.release(job)  # type: ignore[arg-type]
            except BaseException as exc:  # handed to the claiming thread by check()
                if self.error is None:
                    self.error = exc
            finally:
                if job is not _STOP:
                    self._slots.release()
                self._queue.task_done()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._threads:
            if exc is not None and self.error is None:
                self.error = exc  # stop sending what waits: release it instead
            for _ in self._threads:
                self._queue.put(_STOP)
            for thread in self._threads:
                thread.join()
        if exc is None:
            self.check()
