"""Overlap building the next batch with sending the last one.

A worker's time goes to two things that need not wait for each other: claiming and composing
a batch (tokens, SQL) and handing a batch to the provider (waiting on the network, and on
SQLite writes, which release the GIL). One sender thread takes batches from a small queue in
order, so batches still go out one at a time and in claim order; the claiming thread reserves a
slot before each claim, so at most `depth` batches are claimed and unsent at any time. With
depth 1 everything runs inline, in one thread.

Queued batches are only `claimed` (never `submitted`) until the sender takes them, so a crash
leaves them safe to send again. When sending fails for good, the batches still queued are
handed to `release` and the failure is raised in the claiming thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

Job = TypeVar("Job")
_STOP = object()


class Overlap(Generic[Job]):
    def __init__(
        self, deliver: Callable[[Job], None], release: Callable[[Job], None], depth: int
    ) -> None:
        self.deliver = deliver
        self.release = release
        self.depth = max(1, depth)
        self.error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue()
        self._slots = threading.Semaphore(self.depth)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Overlap[Job]:
        if self.depth > 1:
            self._thread = threading.Thread(target=self._run, name="digest-sender", daemon=True)
            self._thread.start()
        return self

    def reserve(self) -> None:
        """Wait for a free slot; call before claiming a batch."""
        self._slots.acquire()

    def unreserve(self) -> None:
        """Give the slot back: nothing was claimed."""
        self._slots.release()

    def put(self, job: Job) -> None:
        """Send `job`, in the reserved slot (inline with depth 1, else by the sender thread)."""
        if self._thread is None:
            try:
                self.deliver(job)
            finally:
                self._slots.release()
            return
        self._queue.put(job)

    def busy(self) -> bool:
        return self._queue.unfinished_tasks > 0

    def drain(self) -> None:
        """Wait until every queued batch was sent."""
        if self._thread is not None:
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
        if self._thread is not None:
            if exc is not None and self.error is None:
                self.error = exc  # stop sending what is queued: release it instead
            self._queue.put(_STOP)
            self._thread.join()
        if exc is None:
            self.check()
