"""The thread boundary: commands, the bounded event queue, the stall monitor."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
import tkinter as tk
from pathlib import Path

import pytest

import client.ui.stall as stall_module
from client.ui.bridge import Bridge, CommandDone
from client.ui.model import Notice, Roster
from client.ui.stall import (
    Stall,
    StallMonitor,
    machine_steal_ms,
    shared_ms,
    thread_schedstat,
)
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


def test_the_stall_monitor_measures_a_blocked_tk_loop(display: str) -> None:
    root = tk.Tk()
    try:
        monitor = StallMonitor(root, interval_ms=5)
        monitor.start()
        run_tk(root, 0.2)
        assert monitor.worst_ms < 40
        assert monitor.stalls == []
        monitor.reset()
        root.after(1, lambda: time.sleep(0.12))
        run_tk(root, 0.3)
        root.after(1, spin, 0.06)
        run_tk(root, 0.3)
        monitor.stop()
        assert 100 <= monitor.worst_ms < 400
        assert monitor.stalls_over_50ms == 2
        assert monitor.ticks > 20
        # Where the time went: asleep (blocked), then busy on a CPU.
        slept, spun = monitor.stalls
        assert 100 <= slept.ms < 400 and 50 <= spun.ms < 400
        if thread_schedstat() is not None:
            assert slept.on_cpu_ms is not None and spun.on_cpu_ms is not None
            assert slept.on_cpu_ms < 30 and slept.blocked_ms > 70
            assert spun.on_cpu_ms >= 55
        assert spun.at_s > slept.at_s > 0
    finally:
        root.destroy()


def test_the_stall_monitor_says_where_the_tk_thread_stalled(display: str) -> None:
    root = tk.Tk()
    try:
        monitor = StallMonitor(root, interval_ms=5, sample_every_ms=5)
        monitor.start()
        root.after(1, spin, 0.25)
        run_tk(root, 0.5)
        monitor.stop()
        (stall,) = monitor.stalls
        assert stall.stacks, stall
        # Most samples caught the busy callback (innermost first) on a CPU;
        # the watchdog waits for the GIL the callback holds, so there are few.
        caught = sum(n for where, n in stall.stacks.items() if " spin <" in where)
        assert caught >= 0.6 * sum(stall.stacks.values()) and caught >= 3
        if sys.platform == "linux":
            assert any(w.startswith("[running] ") for w in stall.stacks), stall
        assert "stacks" in stall.as_dict()
        assert monitor._watchdog is None
    finally:
        root.destroy()


def test_the_stall_monitor_tells_the_garbage_collectors_share(display: str) -> None:
    root = tk.Tk()
    try:
        monitor = StallMonitor(root, interval_ms=5)
        monitor.start()

        def collect_a_large_heap() -> None:
            garbage: list[object] = [[] for _ in range(300_000)]
            for item in garbage:
                item.append(item)  # type: ignore[attr-defined]
            del garbage
            gc.collect()

        root.after(1, collect_a_large_heap)
        run_tk(root, 0.5)
        monitor.stop()
        assert monitor._on_gc not in gc.callbacks
        (stall,) = [s for s in monitor.stalls if s.ms > 30]
        # Building the heap is not collecting it: the collector had a part.
        assert 0 < stall.gc_ms < stall.ms, stall
    finally:
        root.destroy()


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


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/stat is Linux's")
def test_the_machines_steal_time_is_read_in_milliseconds() -> None:
    first = machine_steal_ms()
    assert first is not None and first >= 0
    # Whole clock ticks, never going back.
    assert first * os.sysconf("SC_CLK_TCK") / 1000 == pytest.approx(
        round(first * os.sysconf("SC_CLK_TCK") / 1000)
    )
    time.sleep(0.02)
    second = machine_steal_ms()
    assert second is not None and second >= first


def test_what_linux_does_not_say_is_reported_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stall_module, "PROC_STAT", tmp_path / "missing")
    assert machine_steal_ms() is None
    (tmp_path / "short").write_text("cpu 1 2 3\n")
    monkeypatch.setattr(stall_module, "PROC_STAT", tmp_path / "short")
    assert machine_steal_ms() is None
    assert stall_module._syscall(tmp_path / "missing", {}) == "?"
    (tmp_path / "syscall").write_text("202 0x1 0x2\n")
    assert stall_module._syscall(tmp_path / "syscall", {202: "futex"}) == "futex"
    assert stall_module._syscall(tmp_path / "syscall", {}) == "syscall 202"
    (tmp_path / "syscall").write_text("running\n")
    assert stall_module._syscall(tmp_path / "syscall", {}) == "running"


def test_a_stall_the_whole_machine_shared_is_told_apart() -> None:
    stall = Stall(ended=100.0, at_s=5.0, ms=40.0, on_cpu_ms=2.0,
                  waiting_for_cpu_ms=30.0)  # fmt: skip
    assert shared_ms(stall, []) == 0
    # The probe was late over the last 30 ms of the stall, and once before it.
    assert shared_ms(stall, [(99.5, 20.0), (100.005, 35.0)]) == pytest.approx(30.0)
    # Late around the whole stall: all of it was the machine's.
    assert shared_ms(stall, [(100.01, 80.0)]) == pytest.approx(40.0)
    assert stall.blocked_ms == pytest.approx(8.0)
    assert stall.as_dict() == {
        "at_s": 5.0, "ms": 40.0, "on_cpu_ms": 2.0, "waiting_for_cpu_ms": 30.0,
        "blocked_ms": 8.0, "gc_ms": 0.0, "stolen_ms": None,
    }  # fmt: skip


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
