"""Composing the next batch while the last one is sent: order, depth, release on failure."""

from __future__ import annotations

import threading

import pytest

from digest.send.overlap import Overlap


def test_the_pipeline_sends_in_order_and_holds_at_most_depth_batches() -> None:
    sent: list[int] = []
    outstanding = [0]
    most = [0]
    lock = threading.Lock()

    def deliver(job: int) -> None:
        with lock:
            sent.append(job)
            outstanding[0] -= 1

    with Overlap[int](deliver, lambda job: None, depth=2) as pipe:
        for job in range(50):
            pipe.reserve()
            with lock:
                outstanding[0] += 1
                most[0] = max(most[0], outstanding[0])
            pipe.put(job)
        pipe.drain()
    assert sent == list(range(50))
    assert most[0] <= 2


def test_a_failed_send_releases_what_is_queued_and_raises_in_the_caller() -> None:
    released: list[int] = []
    gate = threading.Event()

    def deliver(job: int) -> None:
        gate.wait(5)
        raise RuntimeError(f"job {job} failed")

    pipeline = Overlap[int](deliver, released.append, depth=3)
    with pytest.raises(RuntimeError, match="job 0 failed"), pipeline as pipe:
        for job in range(3):
            pipe.reserve()
            pipe.put(job)
        gate.set()
        pipe.drain()
    assert released == [1, 2]


def test_depth_one_runs_inline() -> None:
    threads: list[str] = []
    with Overlap[int](
        lambda job: threads.append(threading.current_thread().name), lambda job: None, depth=1
    ) as pipe:
        pipe.reserve()
        pipe.put(1)
    assert threads == [threading.current_thread().name]
