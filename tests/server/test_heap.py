"""The heap freezer: full collections walk what came since the last one, and
what ended while frozen is reclaimed once enough connections have ended; the
server process installs it and reports it."""

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


def test_a_reclaim_is_due_after_a_quarter_of_the_open_connections_ended():
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


class Counts:
    """What the freezer reads of a server: connections opened, open."""

    def __init__(self) -> None:
        self.opened = self.live = 0

    def __call__(self) -> tuple[int, int]:
        return self.opened, self.live


@pytest.fixture
async def freezer():
    counts = Counts()
    heap = HeapFreezer(asyncio.get_running_loop(), counts, check_every_s=0.01)
    heap.install()
    heap.counts = counts  # type: ignore[attr-defined]
    yield heap
    heap.uninstall()


async def test_frozen_cycles_wait_for_the_reclaim_that_churn_sets_off(freezer):
    assert gc.get_freeze_count() > 0
    node = Node()
    gone = weakref.ref(node)
    gc.collect()  # a full pass: the freezer freezes what survived it
    await eventually(lambda: freezer.freezes >= 2)
    del node
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's sight

    # A node's connections end: once enough did, the heap is collected whole.
    freezer.counts.opened = RECLAIM_MIN
    await eventually(lambda: freezer.reclaims == 1)
    assert gone() is None
    assert freezer.snapshot()["gc_reclaims"] == 1
    assert gc.get_freeze_count() > 0  # what survived is frozen again


async def test_growth_freezes_the_heap_again(freezer):
    before = freezer.freezes
    freezer.counts.opened = freezer.counts.live = FREEZE_GROWTH_MIN
    await eventually(lambda: freezer.freezes == before + 1)
    await asyncio.sleep(0.05)
    assert freezer.freezes == before + 1  # no more growth, no more freezes
    assert freezer.reclaims == 0


async def test_uninstall_gives_the_heap_back():
    heap = HeapFreezer(asyncio.get_running_loop(), Counts())
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
        assert "gc_frozen_objects" not in counters
    else:
        assert counters["gc_frozen_objects"] > 0
        assert counters["gc_freezes"] >= 1
