"""The thread boundary: commands, the bounded event queue, the Tk ticker."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import tkinter as tk
from pathlib import Path

import pytest

from client.ui.bridge import Bridge, CommandDone
from client.ui.model import Notice, Roster
from client.ui.ticker import Ticker
from client.ui.tuning import TK_SLICE_NS, set_thread_slice


@pytest.fixture
def bridge():
    bridge = Bridge(max_events=3)
    bridge.start()
    yield bridge
    bridge.stop()


def drain_all(bridge: Bridge) -> list[object]:
    seen: list[object] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        bridge.drain(seen.append)
        if bridge.events.empty() and not bridge._overflow:
            break
        time.sleep(0.01)
    bridge.drain(seen.append)
    return seen


def test_a_command_result_comes_back_after_the_events_it_posted(bridge) -> None:
    async def command() -> int:
        assert threading.current_thread().name == "quicmeet-client"
        bridge.post(Notice("first", ""))
        return 42

    future = bridge.call(command, on_done=print)
    assert future.result(5) == 42
    seen = drain_all(bridge)
    assert seen[0] == Notice("first", "")
    assert isinstance(seen[1], CommandDone)
    assert (seen[1].value, seen[1].error, seen[1].on_done) == (42, None, print)


def test_a_failing_command_comes_back_as_its_error(bridge) -> None:
    async def command() -> None:
        raise ValueError("no")

    future = bridge.call(command)
    with pytest.raises(ValueError):
        future.result(5)
    (done,) = drain_all(bridge)
    assert isinstance(done, CommandDone) and isinstance(done.error, ValueError)


def test_a_full_queue_never_blocks_the_loop_and_loses_nothing_but_old_snapshots(
    bridge,
) -> None:
    async def flood() -> float:
        started = time.perf_counter()
        for i in range(20):
            bridge.post(Notice(f"n{i}", ""))
            bridge.post(Roster(outgoing=(), incoming=(), friends=()))
        bridge.post(Roster())
        await asyncio.sleep(0)
        return time.perf_counter() - started

    assert bridge.run(flood()).result(5) < 0.05
    assert bridge.events.qsize() == 3
    assert bridge.overflowed > 0
    seen = drain_all(bridge)
    notices = [e.title for e in seen if isinstance(e, Notice)]
    assert notices == [f"n{i}" for i in range(20)]
    # Only the roster snapshots that fitted the queue and the newest one remain.
    assert sum(isinstance(e, Roster) for e in seen) <= 3


def test_drain_stops_when_its_time_budget_is_spent(bridge) -> None:
    for i in range(3):
        bridge.run(_post(bridge, Notice(str(i), ""))).result(5)
    assert bridge.drain(lambda _e: None, budget_s=0.0) == 1
    assert bridge.events.qsize() == 2
    assert bridge.drain(lambda _e: None, budget_s=10.0) == 2
    assert bridge.events.empty()


async def _post(bridge: Bridge, event: Notice) -> None:
    bridge.post(event)


def test_a_ticker_ticks_through_one_tcl_command_until_stopped(display: str) -> None:
    root = tk.Tk()
    try:
        # Only the message: a kept exception would hold the root in a cycle
        # (its traceback), which the collector may then free on another thread.
        reported: list[str] = []
        root.report_callback_exception = lambda *args: reported.append(str(args[1]))
        calls: list[float] = []

        def tick() -> None:
            calls.append(time.monotonic())
            if len(calls) == 3:
                raise ValueError("a failing tick")

        commands = set(root.tk.call("info", "commands"))
        ticker = Ticker(root, 10, tick)
        ticker.start()
        ticker.start()  # a second start changes nothing
        (added,) = set(root.tk.call("info", "commands")) - commands
        run_tk(root, 0.3)
        # Every 10 ms, past the failure, through the same command.
        assert 10 <= len(calls) <= 31, len(calls)
        assert reported == ["a failing tick"]
        assert set(root.tk.call("info", "commands")) - commands == {added}
        assert ticker.running
        ticker.stop()
        ticker.stop()
        assert not ticker.running
        assert set(root.tk.call("info", "commands")) == commands
        stopped_at = len(calls)
        run_tk(root, 0.05)
        assert len(calls) == stopped_at
    finally:
        root.destroy()


def run_tk(root: tk.Tk, seconds: float) -> None:
    """Let the Tk loop run for ``seconds``, as the app's main loop would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        root.update()
        time.sleep(0.002)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_the_loop_thread_and_the_threads_it_starts_run_at_a_lower_priority() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    bridge = Bridge(nice=3)
    bridge.start()
    try:

        async def priorities() -> tuple[int, int]:
            def worker_priority() -> int:
                return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

            loop_priority = worker_priority()
            worker = await asyncio.get_running_loop().run_in_executor(
                None, worker_priority
            )
            return loop_priority, worker

        assert bridge.run(priorities()).result(5) == (base + 3, base + 3)
        # The Tk side keeps its own priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    finally:
        bridge.stop()


def test_a_thread_asks_for_a_short_time_slice_and_keeps_its_nice() -> None:
    result: list[tuple[bool, int, str]] = []

    def ask() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 2)
        granted = set_thread_slice(TK_SLICE_NS)
        sched = Path("/proc/thread-self/sched")
        text = sched.read_text() if sched.exists() else ""
        result.append((granted, os.getpriority(os.PRIO_PROCESS, tid), text))

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    granted, nice, sched = result[0]
    if not granted:
        pytest.skip("no custom time slices here (Linux 6.12 and later)")
    assert nice == 2
    slices = [line.split(":")[1].strip() for line in sched.splitlines()
              if line.startswith("se.slice")]  # fmt: skip
    if slices:
        assert slices == [str(TK_SLICE_NS)]
