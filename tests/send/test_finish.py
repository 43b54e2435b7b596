"""The end of a send: `finish` marks the edition sent once, however many workers finish at once."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select

from digest.backends.memory import MemoryBackend
from digest.send.engine import begin, finish, run
from digest.store.models import EditionEvent
from tests.send_helpers import LedgerDb, add_subscribers
from tests.send_runtime import FakeTime


def test_two_workers_finishing_at_once_mark_the_edition_sent_once(
    ledger_db: LedgerDb, edition_id: int, now: datetime
) -> None:
    add_subscribers(ledger_db.factory, 3, now)
    begin(ledger_db.factory, edition_id, now)
    run(
        ledger_db.factory,
        ledger_db.settings,
        MemoryBackend(),
        edition_id,
        runtime=FakeTime(now).runtime(),
    )
    start = threading.Barrier(2, timeout=30)
    results: list[bool] = []
    errors: list[BaseException] = []

    def finisher() -> None:
        try:
            start.wait()
            results.append(finish(ledger_db.factory, edition_id, now)[1])
        except BaseException as exc:  # the test reports it below, not a thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=finisher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and results == [True, True]
    with ledger_db.factory() as session:
        events = session.scalars(
            select(EditionEvent.action).where(EditionEvent.edition_id == edition_id)
        ).all()
    assert events.count("sent") == 1
