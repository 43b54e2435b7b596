"""Sends started from the web app (the API, the console): the request starts the send and
answers at once; a worker thread of this process delivers it.

Starting is `engine.begin` (or `engine.resume`), in the request, so every refusal (a draft, a
closed window, no recipients) is the request's answer. Delivering is `engine.run` then
`engine.finish`, the same worker as `digest send`'s, in a thread. If the process stops mid-send,
the ledger keeps the send `sending`: `digest send --resume` (or the API's resume, or any
`digest worker`) continues it, exactly once per recipient as always. Stopping the web app asks
the thread to finish its batch and stop (Runtime.should_stop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.backends import get_backend
from digest.backends.base import EmailBackend
from digest.config import Settings
from digest.edition.lifecycle import Override
from digest.send import engine
from digest.send import worker as one_worker
from digest.send.engine import SendReport
from digest.send.worker import Runtime

log = logging.getLogger(__name__)


class Sends:
    """The sends this process delivers, one thread each."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], datetime],
        backend: EmailBackend | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.clock = clock
        self.backend = backend
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _backend(self) -> EmailBackend:
        return self.backend if self.backend is not None else get_backend(self.settings)

    def start(self, edition_id: int, actor: str, force: Override | None = None) -> SendReport:
        """Begin the send (refusals raise here) and deliver it in a thread."""
        self.settings.secret_keys()  # no signing key: refuse before the edition is marked
        backend = self._backend()  # a backend without its key: refuse before, too
        report = engine.begin(
            self.factory,
            edition_id,
            self.clock(),
            batch_size=one_worker.batch_size(self.settings, backend),
            settings=self.settings,
            actor=actor,
            force=force,
        )
        self._deliver_in_thread(report.edition_id, backend)
        return report

    def resume(self, edition_id: int, actor: str, *, resend_uncertain: bool = False) -> SendReport:
        backend = self._backend()
        report = engine.resume(
            self.factory,
            self.settings,
            edition_id,
            self.clock(),
            resend_uncertain=resend_uncertain,
            actor=actor,
        )
        self._deliver_in_thread(report.edition_id, backend)
        return report

    def running(self, edition_id: int) -> bool:
        with self._lock:
            thread = self._threads.get(edition_id)
            return thread is not None and thread.is_alive()

    def wait(self, edition_id: int, timeout_s: float = 30.0) -> bool:
        """Until this process's thread for the edition is done (tests, shutdown)."""
        with self._lock:
            thread = self._threads.get(edition_id)
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask every thread to stop after its batch, and wait for them."""
        self._stopping.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout_s)

    def _deliver_in_thread(self, edition_id: int, backend: EmailBackend) -> None:
        with self._lock:
            current = self._threads.get(edition_id)
            if current is not None and current.is_alive():
                return  # already delivering it: the running worker takes the new rows too
            thread = threading.Thread(
                target=self._deliver,
                args=(edition_id, backend),
                name=f"send-{edition_id}",
                daemon=True,  # stop() asks it to finish its batch; a crash is resumable
            )
            self._threads[edition_id] = thread
            thread.start()

    def _deliver(self, edition_id: int, backend: EmailBackend) -> None:
        runtime = Runtime(clock=self.clock, should_stop=self._stopping.is_set)
        try:
            engine.run(self.factory, self.settings, backend, edition_id, runtime=runtime)
            engine.finish(self.factory, edition_id, self.clock())
        except Exception:
            # The ledger keeps the send as it was; `digest send status` and resume see it.
            log.exception("send of edition %s stopped with an error", edition_id)
