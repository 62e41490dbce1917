"""Chat never loses or duplicates a message, even when the server is killed."""

import asyncio
import random
import signal

from client import Reconnected
from tests.conftest import (
    befriend,
    close_member,
    open_member,
    start_server_process,
)

PAIRS = 4
PER_SENDER = 500  # 2,000 messages in all


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(20261124)
    extra = ["--chat-rate", "2000"]
    srv = start_server_process(tmp_path, extra=extra)
    port = srv.port
    members = []
    try:
        for i in range(PAIRS * 2):
            members.append(
                await open_member(
                    srv.address, f"user{i}", tmp_path / f"home{i}", max_backoff=0.3
                )
            )
        pairs = [(members[2 * i], members[2 * i + 1]) for i in range(PAIRS)]
        for sender, receiver in pairs:
            await befriend(sender, receiver)

        kills_during_sending = 0
        sending = True
        reconnected = {m.name: 0 for m in members}

        def reconnects(m):
            while not m.session._events.empty():
                event = m.session._events.get_nowait()
                reconnected[m.name] += isinstance(event, Reconnected)
            return reconnected[m.name]

        async def send_all(sender, receiver):
            for n in range(PER_SENDER):
                await sender.chat.send(receiver.name, f"{sender.name}:{n}")
                await asyncio.sleep(rng.uniform(0, 0.02))

        async def killer():
            nonlocal srv, kills_during_sending
            for kill in range(3):
                # Kill while traffic flows: once everyone is back from the last.
                while not all(reconnects(m) >= kill for m in members):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                kills_during_sending += sending
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait(5)
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                srv = start_server_process(tmp_path, port=port, extra=extra)

        async def senders():
            nonlocal sending
            await asyncio.gather(*(send_all(s, r) for s, r in pairs))
            sending = False

        await asyncio.gather(killer(), senders())
        assert kills_during_sending >= 2

        async def settled():
            while True:
                pending = 0
                for sender, _ in pairs:
                    pending += len(await sender.store.run(sender.store.pending))
                    if pending == 0:
                        await sender.chat.flush()
                done = True
                for sender, receiver in pairs:
                    await receiver.chat.drain()
                    history = await receiver.chat.history(sender.name, limit=10_000)
                    if len(history) < PER_SENDER:
                        done = False
                if pending == 0 and done:
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(settled(), 90)
        for sender, receiver in pairs:
            received = await receiver.chat.history(sender.name, limit=10_000)
            texts = [m.text for m in received]
            assert texts == [f"{sender.name}:{n}" for n in range(PER_SENDER)]
            seqs = [m.seq for m in received]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            sent = await sender.chat.history(receiver.name, limit=10_000)
            assert all(m.state in ("sent", "delivered", "read") for m in sent)
            assert [m.seq for m in sent] == seqs
        for m in members:
            assert reconnects(m) == 3
    finally:
        for m in members:
            await close_member(m)
        srv.stop()
