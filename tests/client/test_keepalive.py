"""Keepalives: how often a client PINGs, and when it gives a silent server up."""

import asyncio

import pytest

from client import Session
from client.errors import ConnectionLost
from client.events import Disconnected
from client.transport import (
    KEEPALIVE_INTERVAL,
    LONG_IDLE_TIMEOUT,
    Keepalive,
    keepalive_plan,
)
from netsim import ImpairmentProxy
from server.app import ServerApp
from tests.conftest import PASSWORD, next_of, server_config


@pytest.mark.parametrize(
    ("server_idle", "client_idle", "plan"),
    [
        # The default server: PINGs every 1.5 s, the shorter timer.
        (5.0, 5.0, Keepalive(KEEPALIVE_INTERVAL, 5.0, False)),
        (5.0, 2.0, Keepalive(2.0 / 3, 2.0, False)),
        (3.0, 5.0, Keepalive(1.0, 3.0, False)),
        (None, 5.0, Keepalive(KEEPALIVE_INTERVAL, 5.0, False)),
        # 0 announces no idle timeout at all (RFC 9000 18.2): the client's own.
        (0.0, 5.0, Keepalive(KEEPALIVE_INTERVAL, 5.0, False)),
        (LONG_IDLE_TIMEOUT - 1, 5.0, Keepalive(KEEPALIVE_INTERVAL, 5.0, False)),
        # A server that asks for few PINGs: its timer, the client watching.
        (LONG_IDLE_TIMEOUT, 5.0, Keepalive(LONG_IDLE_TIMEOUT / 3, 60.0, True, 2)),
        (60.0, 2.0, Keepalive(20.0, 120.0, True, 2)),
    ],
)
def test_the_plan_follows_the_server_only_when_it_asks_for_few_pings(
    server_idle, client_idle, plan
):
    assert keepalive_plan(server_idle, client_idle) == plan


def test_every_keepalive_is_a_ping_unless_the_server_asks_for_few():
    beats = range(1, 7)
    assert all(keepalive_plan(5.0, 5.0).pings_at(b) for b in beats)
    long = keepalive_plan(60.0, 5.0)
    assert [long.pings_at(b) for b in beats] == [False, True] * 3


async def test_a_long_idle_timeout_draws_few_pings_and_silence_is_noticed(tmp_path):
    app = ServerApp(server_config(tmp_path, idle_timeout=60.0))
    await app.start()
    try:
        async with ImpairmentProxy(upstream=app.address, seed=1) as proxy:
            host, port = proxy.listen_address
            session = Session(f"{host}:{port}", idle_timeout=1.5, max_backoff=0.3)
            await session.connect()
            await session.register("sleeper", PASSWORD)
            await session.login("sleeper", PASSWORD)
            proto = session._proto
            assert proto is not None
            assert proto.keepalive == Keepalive(20.0, 120.0, True, 2)

            # Idle for 4 s: with the client's own 1.5 s limit it would have
            # PINGed every 0.5 s; now nothing goes up, and the server (60 s)
            # keeps the silent connection.
            await asyncio.sleep(1.0)  # the path MTU search ends
            before = proxy.stats.up.packets_in
            await asyncio.sleep(4.0)
            assert proxy.stats.up.packets_in - before <= 1
            assert (await session.update_profile(mood="awake")).mood == "awake"
            assert session._proto is proto and proto.is_open

            # The server goes silent while a request waits: the client gives
            # the connection up after its own 1.5 s, not the server's 60.
            proxy.update(blackhole=True)
            loop = asyncio.get_running_loop()
            started = loop.time()
            request = asyncio.ensure_future(session.update_profile(mood="lost"))
            lost = await next_of(session, Disconnected, 10)
            # 1.5 s and a watch tick on a quick machine; far from the 60 s
            # the connection would otherwise wait on any machine.
            assert loop.time() - started < 10.0
            assert lost.will_retry
            assert "answered nothing" in lost.reason
            with pytest.raises(ConnectionLost):
                await request
            proxy.update(blackhole=False)
            await session.close()
    finally:
        await app.shutdown(grace=0.0)


async def test_between_pings_the_client_sends_acks_the_server_does_not_answer(
    tmp_path, monkeypatch
):
    """The client core's loop on the long plan's rhythm (here every 0.25 s so
    the test is short): keepalives alternate between an ACK-only packet and
    a PING, and the real server answers the PINGs alone."""
    from client import transport

    monkeypatch.setattr(
        transport,
        "keepalive_plan",
        lambda server_idle, idle: Keepalive(0.25, 60.0, True, 2),
    )
    app = ServerApp(server_config(tmp_path, idle_timeout=60.0))
    await app.start()
    try:
        async with ImpairmentProxy(upstream=app.address, seed=1) as proxy:
            host, port = proxy.listen_address
            session = Session(f"{host}:{port}", idle_timeout=5.0)
            await session.connect()
            await session.register("sleeper", PASSWORD)
            await session.login("sleeper", PASSWORD)
            await asyncio.sleep(1.0)  # the path MTU search ends
            up, down = proxy.stats.up.packets_in, proxy.stats.down.packets_in
            await asyncio.sleep(2.0)
            keepalives = proxy.stats.up.packets_in - up
            answers = proxy.stats.down.packets_in - down
            # About 8 keepalives, half of them PINGs, each PING one answer.
            assert 5 <= keepalives <= 10
            assert abs(answers - keepalives / 2) <= 1
            assert (await session.update_profile(mood="awake")).mood == "awake"
            await session.close()
    finally:
        await app.shutdown(grace=0.0)
