"""The loop monitor: stalls, and the part of them that was the server's own."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time

import pytest

from server.monitor import CollectorWatch, LoopMonitor, cpu_wait, own_stall

SCHEDSTAT = "/proc/thread-self/schedstat"


def fresh_cpu_wait() -> float:
    with open(SCHEDSTAT) as fh:
        return int(fh.read().split()[1]) / 1e9


def test_own_stall_is_the_stall_less_the_wait_for_a_cpu():
    assert own_stall(0.150, 0.050) == pytest.approx(0.100)
    assert own_stall(0.050, 0.200) == 0.0


@pytest.mark.skipif(not os.path.exists(SCHEDSTAT), reason="no schedstat here")
def test_cpu_wait_reads_the_calling_threads_own_figure_each_time():
    """The descriptor kept per thread reads that thread's wait, afresh at each
    call, and a forked child reads its own; calls open nothing new."""
    cpu_wait()
    descriptors = len(os.listdir("/proc/self/fd"))
    readings: dict[str, tuple[float, float, float]] = {}

    def read(name: str) -> None:
        # Spin a while so that each thread's figures differ.
        started = time.thread_time()
        while time.thread_time() - started < 0.02:
            pass
        before = fresh_cpu_wait()
        kept = cpu_wait()
        after = fresh_cpu_wait()
        assert kept is not None
        readings[name] = (before, kept, after)

    threads = [threading.Thread(target=read, args=(str(i),)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read("main")
    for before, kept, after in readings.values():
        assert before <= kept <= after
    for _ in range(100):
        cpu_wait()
    gc.collect()
    # The threads that ended closed theirs; the main thread keeps one.
    assert len(os.listdir("/proc/self/fd")) == descriptors

    parent = cpu_wait()
    assert parent is not None
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit code tells
        before = fresh_cpu_wait()
        kept = cpu_wait()
        after = fresh_cpu_wait()
        os._exit(0 if kept is not None and before <= kept <= after else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cpu_wait() is not None


async def test_a_callback_that_computes_is_an_own_stall():
    monitor = LoopMonitor(interval=0.01)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        # 150 ms of this thread's CPU time, however long the machine makes it.
        started = time.thread_time()
        while time.thread_time() - started < 0.15:
            pass
        await asyncio.sleep(0.05)
    finally:
        monitor.stop()
    assert monitor.worst_stall_ms >= 100
    if sys.platform == "linux":
        assert monitor.worst_own_stall_ms is not None
        assert 100 <= monitor.worst_own_stall_ms <= monitor.worst_stall_ms
    monitor.reset()
    assert monitor.worst_stall_ms == 0.0


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_collector_watch_times_full_and_young_collections():
    watch = CollectorWatch()
    watch.start()
    try:
        kept = [[i] for i in range(200_000)]  # a heap a full pass must walk
        gc.collect(0)
        gc.collect()
        gc.collect()
    finally:
        watch.stop()
    # Two asked for, and any the heap's growth set off on its own.
    counted = watch.full_collections
    assert counted >= 2
    assert 0 < watch.worst_full_ms <= watch.full_ms_total
    snapshot = watch.snapshot()
    assert snapshot["gc_full_collections"] == counted
    assert snapshot["gc_worst_full_pause_ms"] > 0
    # The worst pass's own CPU (its thread's): a pass is work, not waiting,
    # unless the machine was busy.
    assert 0 < snapshot["gc_worst_full_pause_cpu_ms"]
    assert (
        snapshot["gc_worst_full_pause_cpu_ms"]
        <= snapshot["gc_worst_full_pause_ms"] * 1.1
    )
    gc.collect()  # after stop: not counted
    assert watch.full_collections == counted
    watch.reset()
    assert watch.worst_full_ms == watch.worst_young_ms == 0.0
    assert watch.worst_full_cpu_ms == 0.0 and watch.worst_full_collected == 0
    assert watch.full_ms_total > 0  # the total is not a phase figure
    del kept


def test_the_worst_full_pass_says_what_it_freed():
    watch = CollectorWatch()
    enabled = gc.isenabled()
    gc.disable()  # no pass but the one asked for
    watch.start()
    try:
        for _ in range(5000):
            Cycle()  # garbage only a pass frees
        gc.collect()
    finally:
        watch.stop()
        if enabled:
            gc.enable()
    assert watch.full_collections == 1
    assert watch.worst_full_collected >= 5000
    assert watch.snapshot()["gc_worst_full_collected"] == watch.worst_full_collected


async def test_the_server_reports_its_collections(server):
    gc.collect()
    snapshot = server.snapshot()
    assert snapshot["gc_full_collections"] >= 1
    assert snapshot["gc_worst_full_pause_ms"] > 0
