"""The loop monitor: stalls, and the part of them that was the server's own."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from server.monitor import LoopMonitor, own_stall


def test_own_stall_is_the_stall_less_the_wait_for_a_cpu():
    assert own_stall(0.150, 0.050) == pytest.approx(0.100)
    assert own_stall(0.050, 0.200) == 0.0


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
