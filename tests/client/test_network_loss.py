"""Sessions and chat over a bad network, through netsim's UDP impairment proxy."""

import asyncio

from client import Reconnected, Session
from client.events import Disconnected
from netsim import ImpairmentProxy, LinkConfig
from tests.conftest import (
    PASSWORD,
    address,
    befriend,
    close_member,
    next_of,
    open_member,
)


async def test_reconnects_and_resumes_after_a_network_outage(server):
    upstream = server.address
    async with ImpairmentProxy(upstream=upstream, seed=1) as proxy:
        host, port = proxy.listen_address
        session = Session(f"{host}:{port}", idle_timeout=2.0, max_backoff=0.3)
        await session.connect()
        await session.register("roamer", PASSWORD)
        await session.login("roamer", PASSWORD)
        proxy.update(blackhole=True)
        lost = await next_of(session, Disconnected, 10)
        assert lost.will_retry
        proxy.update(blackhole=False)
        back = await next_of(session, Reconnected, 10)
        assert back.attempts >= 1
        assert (await session.get_profile()).username == "roamer"
        await session.close()


async def test_session_survives_a_lossy_path(server):
    async with ImpairmentProxy(
        upstream=server.address,
        up=LinkConfig(delay_s=0.03, jitter_s=0.01, loss=0.1),
        down=LinkConfig(delay_s=0.03, jitter_s=0.01, loss=0.1),
        seed=7,
    ) as proxy:
        host, port = proxy.listen_address
        session = Session(f"{host}:{port}")
        await session.connect()
        await session.register("lossy", PASSWORD)
        await session.login("lossy", PASSWORD)
        for i in range(40):
            assert (await session.update_profile(mood=f"m{i}")).mood == f"m{i}"
        await session.close()
        stats = proxy.stats
        assert stats.up.dropped_loss + stats.down.dropped_loss > 0


async def test_recipient_reconnecting_many_times_gets_every_message_once_in_order(
    server, tmp_path
):
    total = 200
    sender = await open_member(address(server), "talker", tmp_path / "talker")
    async with ImpairmentProxy(
        upstream=server.address,
        up=LinkConfig(delay_s=0.01, loss=0.02),
        down=LinkConfig(delay_s=0.01, loss=0.02),
        seed=3,
    ) as proxy:
        host, port = proxy.listen_address
        receiver = await open_member(
            f"{host}:{port}",
            "hearer",
            tmp_path / "hearer",
            idle_timeout=1.5,
            max_backoff=0.2,
        )
        try:
            await befriend(sender, receiver)

            async def send_all():
                for n in range(total):
                    await sender.chat.send("hearer", f"n{n}")
                    await asyncio.sleep(0.02)

            async def drop_repeatedly():
                for _ in range(4):
                    await asyncio.sleep(0.6)
                    proxy.update(blackhole=True)
                    await next_of(receiver.session, Disconnected, 10)
                    proxy.update(blackhole=False)
                    await next_of(receiver.session, Reconnected, 10)

            await asyncio.gather(send_all(), drop_repeatedly())

            async def all_arrived():
                while True:
                    await receiver.chat.drain()
                    history = await receiver.chat.history("talker", limit=1000)
                    if len(history) >= total:
                        return history
                    await asyncio.sleep(0.1)

            history = await asyncio.wait_for(all_arrived(), 30)
            assert [m.text for m in history] == [f"n{n}" for n in range(total)]
            assert [m.seq for m in history] == list(range(1, total + 1))
        finally:
            await close_member(receiver)
            await close_member(sender)
