""":mod:`udpio.deadlines`: many connections' timers under one loop timer,
on asyncio's loop and on uvloop's (the node's), and a real server's
connections kept there."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from codec.messages import ServerClosing
from tests.conftest import eventually
from udpio.deadlines import Deadlines

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Conn:
    """A connection as :class:`Deadlines` sees it; it records when it was
    called, for which deadline, and may arm itself again or raise."""

    def __init__(self, name: str, deadlines: Deadlines) -> None:
        self.name = name
        self.deadlines = deadlines
        self.deadline_seq = 0
        self.deadline_at: float | None = None
        self.calls: list[tuple[float, float]] = []
        self.then: Callable[[Conn, float], None] | None = None

    def on_deadline(self, when: float) -> None:
        self.calls.append((when, asyncio.get_running_loop().time()))
        if self.then is not None:
            self.then(self, when)


def run(
    loop_name: str,
    test: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]],
) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(test(runner.get_loop()))


@pytest.mark.parametrize("loop_name", LOOPS)
def test_each_fires_once_at_its_latest_deadline_in_order(loop_name):
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        deadlines = Deadlines(loop)
        order: list[str] = []
        conns = {name: Conn(name, deadlines) for name in "abcde"}
        for conn in conns.values():
            conn.then = lambda c, _: order.append(c.name)
        now = loop.time()
        deadlines.arm(conns["a"], now + 0.06)
        deadlines.arm(conns["b"], now + 0.02)
        deadlines.arm(conns["c"], now + 0.04)
        deadlines.arm(conns["d"], now + 0.01)
        deadlines.arm(conns["e"], now + 0.03)
        deadlines.arm(conns["b"], now + 0.05)  # moved later
        deadlines.arm(conns["a"], now + 0.005)  # moved earlier
        deadlines.disarm(conns["e"])
        deadlines.arm(conns["c"], now + 0.04)  # unchanged: no new entry
        assert len(deadlines) == 4 and deadlines.entries() == 7
        await asyncio.sleep(0.1)
        assert order == ["a", "d", "c", "b"]
        for name, at in (("a", 0.005), ("d", 0.01), ("c", 0.04), ("b", 0.05)):
            [(when, called)] = conns[name].calls
            assert when == pytest.approx(now + at)
            # The loop's own rule: a timer runs once its time is within the
            # clock's resolution; on_deadline gets the deadline it set.
            assert called >= when - 0.0011
        assert conns["e"].calls == []
        assert len(deadlines) == 0 and deadlines.fired == 4
        assert conns["a"].deadline_seq == 0 and conns["a"].deadline_at is None

    run(loop_name, test)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_deadline_armed_in_the_past_runs_on_a_later_turn(loop_name):
    """A connection whose handler arms a deadline already past (aioquic does,
    when a timer is due again at once) is called again, but not from inside
    the same pass: the loop goes on turning meanwhile."""

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        deadlines = Deadlines(loop)
        conn = Conn("a", deadlines)
        turns = 0

        def again(c: Conn, when: float) -> None:
            if len(c.calls) < 5:
                deadlines.arm(c, when - 1.0)

        async def turning() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        conn.then = again
        ticker = loop.create_task(turning())
        deadlines.arm(conn, loop.time())
        await eventually(lambda: len(conn.calls) == 5)
        ticker.cancel()
        assert turns >= 5
        assert len(deadlines) == 0

    run(loop_name, test)


def test_a_handler_that_raises_is_logged_and_the_others_still_run(caplog):
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        deadlines = Deadlines(loop)
        conns = [Conn(name, deadlines) for name in "abc"]

        def boom(c: Conn, when: float) -> None:
            raise RuntimeError("handler failed")

        conns[1].then = boom
        now = loop.time()
        for conn in conns:
            deadlines.arm(conn, now)
        await asyncio.sleep(0.02)
        assert [len(c.calls) for c in conns] == [1, 1, 1]
        deadlines.arm(conns[1], loop.time())  # it is still served later
        await asyncio.sleep(0.02)
        assert len(conns[1].calls) == 2

    run("asyncio", test)
    failed = [r for r in caplog.records if r.name == "udpio.deadlines"]
    assert len(failed) == 2 and all(r.exc_info for r in failed)


def test_stale_entries_are_bounded():
    """Every move leaves a stale entry until its time; the heap is rebuilt
    from the live ones once the stale ones outnumber them."""

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        deadlines = Deadlines(loop)
        conns = [Conn(str(i), deadlines) for i in range(100)]
        now = loop.time()
        for step in range(200):
            for i, conn in enumerate(conns):
                deadlines.arm(conn, now + 60.0 + step + i * 0.001)
            assert deadlines.entries() <= 2 * len(conns) + 1024 + 1
        assert len(deadlines) == 100
        # What is left is every connection's latest deadline.
        for conn in conns:
            deadlines.arm(conn, now + 0.01)
        await asyncio.sleep(0.05)
        assert all(len(c.calls) == 1 for c in conns)
        assert len(deadlines) == 0

    run("asyncio", test)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_armed_deadlines_leave_nothing_for_the_collector(loop_name):
    """What a node's full passes walked was loop timers: four tracked objects
    per connection whose deadline moved. A deadline in the heap leaves none
    (after the young collection that untracks its tuple)."""

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        deadlines = Deadlines(loop)
        conns = [Conn(str(i), deadlines) for i in range(2000)]
        now = loop.time()

        def tracked() -> int:
            gc.collect()
            return len(gc.get_objects())

        before = tracked()
        for i, conn in enumerate(conns):
            deadlines.arm(conn, now + 60.0 + i * 0.001)
        with_heap = tracked() - before

        before = tracked()
        timers = [loop.call_at(now + 60.0, conn.on_deadline, 0.0) for conn in conns]
        with_timers = tracked() - before
        for timer in timers:
            timer.cancel()
        assert with_timers >= 2 * len(conns)  # what the test would see
        assert with_heap < 50

    run(loop_name, test)


async def test_a_server_keeps_its_connections_timers_in_its_heap(server, user):
    """A real server connection has no loop timer of its own; its deadline is
    the heap's, and the heap runs it: what it sends a client that vanished is
    probed, and the connection ends by idle timeout."""
    alice = await user("alice")
    deadlines = server.endpoint.deadlines
    [conn] = server.connections
    assert conn._timer is None
    assert conn.deadline_at == conn.quic.get_timer() is not None
    assert len(deadlines) >= 1
    proto = alice._proto
    proto._keepalive.cancel()
    if proto._timer is not None:
        proto._timer.cancel()
    proto._transport.close()
    alice._proto = None
    sent = conn.quic._loss._pto_count
    conn.send(ServerClosing(message="nobody reads this"))
    await eventually(lambda: conn.quic._loss._pto_count > sent)  # probed
    await eventually(
        lambda: not server.connections, timeout=server.config.idle_timeout + 5
    )
    await eventually(lambda: conn.deadline_seq == 0)
