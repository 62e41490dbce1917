"""The heap freezer: full collections walk what came since the last one, and
what ended connections left in frozen cycles is reclaimed once enough of them
are stuck; the server process installs it and reports it."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import weakref

import pytest

from server.heap import (
    FREEZE_GROWTH_MIN,
    RECLAIM_EVERY_S,
    RECLAIM_MIN,
    HeapFreezer,
    freeze_due,
    reclaim_due,
)
from tests.conftest import eventually, start_server_process


def test_a_reclaim_is_due_once_a_quarter_of_the_open_connections_are_stuck():
    assert not reclaim_due(RECLAIM_MIN - 1, 0)
    assert reclaim_due(RECLAIM_MIN, 0)
    assert not reclaim_due(24_999, 100_000)
    assert reclaim_due(25_000, 100_000)
    # Whatever ended, at most six hours apart.
    assert not reclaim_due(0, 100_000, RECLAIM_EVERY_S - 1)
    assert reclaim_due(0, 100_000, RECLAIM_EVERY_S)


def test_a_freeze_is_due_after_a_few_percent_of_growth():
    assert not freeze_due(FREEZE_GROWTH_MIN - 1, 0)
    assert freeze_due(FREEZE_GROWTH_MIN, 0)
    assert not freeze_due(104_999, 100_000)
    assert freeze_due(105_000, 100_000)


class Node:
    """A cycle that only the collector can free."""

    def __init__(self) -> None:
        self.me = self


class Live:
    """What the freezer reads of a server: the connections open."""

    def __init__(self) -> None:
        self.live = 0

    def __call__(self) -> int:
        return self.live


class Connection:
    """An ended connection, freed by refcounting once dropped."""


@pytest.fixture
async def freezer():
    live = Live()
    heap = HeapFreezer(asyncio.get_running_loop(), live, check_every_s=0.01)
    heap.install()
    heap.live = live  # type: ignore[attr-defined]
    yield heap
    heap.uninstall()


async def test_frozen_cycles_wait_for_the_reclaim_that_stuck_connections_set_off(
    freezer,
):
    assert gc.get_freeze_count() > 0
    nodes = [Node() for _ in range(RECLAIM_MIN)]
    gone = weakref.ref(nodes[0])
    gc.collect()  # a full pass: the freezer freezes what survived it
    await eventually(lambda: freezer.freezes >= 2)

    # Connections that refcounting frees are released, whatever their number.
    freezer.live.live = 1
    ended = [Connection() for _ in range(2 * RECLAIM_MIN)]
    for connection in ended:
        freezer.ended(connection)
    del ended, connection
    await eventually(lambda: freezer.released == 2 * RECLAIM_MIN)
    await asyncio.sleep(0.05)
    assert freezer.reclaims == 0 and freezer.stuck == 0

    # Ended connections held in frozen cycles are stuck...
    for node in nodes:
        freezer.ended(node)
    del nodes, node
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's sight
    # ...and once enough are, the heap is collected whole.
    await eventually(lambda: freezer.reclaims == 1)
    assert gone() is None
    assert freezer.stuck == RECLAIM_MIN
    snapshot = freezer.snapshot()
    assert snapshot["gc_reclaims"] == 1
    assert snapshot["gc_stuck_connections"] == RECLAIM_MIN
    assert snapshot["gc_released_connections"] == 2 * RECLAIM_MIN
    assert gc.get_freeze_count() > 0  # what survived is frozen again


async def test_growth_freezes_the_heap_again(freezer):
    before = freezer.freezes
    freezer.live.live = FREEZE_GROWTH_MIN
    await eventually(lambda: freezer.freezes == before + 1)
    await asyncio.sleep(0.05)
    assert freezer.freezes == before + 1  # no more growth, no more freezes
    assert freezer.reclaims == 0


async def test_its_report_does_not_walk_the_frozen_heap(freezer, monkeypatch):
    """``gc.get_freeze_count`` walks every frozen object with the GIL held:
    0.6 s a report on a node of 40,000 connections, every time an operator
    or a benchmark asked for its stats."""
    assert gc.get_freeze_count() > 0

    def walk() -> int:
        raise AssertionError("the report walked the frozen heap")

    monkeypatch.setattr(gc, "get_freeze_count", walk)
    report = freezer.snapshot()
    assert report["gc_freezes"] >= 1 and report["gc_reclaims"] == 0


async def test_uninstall_gives_the_heap_back():
    heap = HeapFreezer(asyncio.get_running_loop(), Live())
    heap.install()
    assert gc.get_freeze_count() > 0
    heap.uninstall()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert heap.freezes == 1  # the collector's passes no longer freeze


@pytest.mark.parametrize("flag", [[], ["--no-heap-freeze"]])
async def test_the_server_process_freezes_its_heap_unless_told_not_to(tmp_path, flag):
    stats = tmp_path / "stats.json"
    srv = start_server_process(tmp_path, extra=["--stats-file", str(stats), *flag])
    try:
        srv.proc.send_signal(signal.SIGUSR1)
        await eventually(stats.exists)
        counters = json.loads(stats.read_text())
    finally:
        srv.stop()
    assert "gc_full_collections" in counters
    if flag:
        assert "gc_freezes" not in counters
    else:
        assert counters["gc_freezes"] >= 1
