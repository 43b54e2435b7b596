"""Many batches in flight at once: every batch sent once, at most `width` at a time and one more
waiting, the waiting ones released when sending fails, width 1 inline."""

from __future__ import annotations

import threading
import time

import pytest

from digest.send.inflight import InFlight


def test_width_batches_are_sent_at_once_and_one_more_waits() -> None:
    width = 4
    together = threading.Barrier(width, timeout=30)  # the first four meet inside deliver
    lock = threading.Lock()
    sent: list[int] = []
    sending = [0, 0]  # now, most
    held = [0, 0]  # reserved and unfinished: now, most

    def deliver(job: int) -> None:
        with lock:
            sending[0] += 1
            sending[1] = max(sending[1], sending[0])
        if job < width:
            together.wait()  # would time out unless `width` batches are in flight at once
        with lock:
            sent.append(job)
            sending[0] -= 1
            held[0] -= 1

    with InFlight[int](deliver, lambda job: None, width=width) as pipe:
        for job in range(60):
            pipe.reserve()
            with lock:
                held[0] += 1
                held[1] = max(held[1], held[0])
            pipe.put(job)
        pipe.drain()
        assert not pipe.busy()
    assert sorted(sent) == list(range(60))
    assert sending[1] == width
    assert held[1] <= width + 1


def test_a_failed_send_releases_what_waits_and_raises_in_the_caller() -> None:
    released: list[int] = []
    finished: list[int] = []
    started = threading.Barrier(3, timeout=30)
    gate = threading.Event()

    def deliver(job: int) -> None:
        started.wait()  # jobs 0 and 1 are being sent, with the caller
        gate.wait(30)
        if job == 0:
            raise RuntimeError("job 0 failed")
        for _ in range(3000):  # job 1 ends only once job 0's failure is known
            if pipeline.error is not None:
                break
            time.sleep(0.01)
        finished.append(job)

    pipeline = InFlight[int](deliver, released.append, width=2)
    with pytest.raises(RuntimeError, match="job 0 failed"), pipeline as pipe:
        for job in range(3):  # two senders and one waiting: every slot taken
            pipe.reserve()
            pipe.put(job)
        started.wait()
        gate.set()
        pipe.drain()
    assert finished == [1]  # the batch in flight beside the failed one finishes
    assert released == [2]  # the one waiting goes back


def test_width_one_runs_inline() -> None:
    threads: list[str] = []
    with InFlight[int](
        lambda job: threads.append(threading.current_thread().name), lambda job: None, width=1
    ) as pipe:
        pipe.reserve()
        pipe.put(1)
    assert threads == [threading.current_thread().name]
