"""Idle logged-in connections: server memory per connection and connect+resume rate.

Side by side in one run: N clients connect to the quicmeet server and resume
their sessions by token; then N clients connect to a bare aioquic server
(bench/_bare_server.py) and make one request/reply exchange. Both keep their
connections open with a PING every 1.5 s; with ``--idle S`` both servers'
RSS is read again after the connections idled S more seconds (aioquic's
duplicate detection alone kept a set of up to 256 packet numbers per
connection, filled by keepalives). Prints one JSON object.

    python bench/connections.py --n 500
    python bench/connections.py --n 500 --idle 240
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import tempfile
import time
from pathlib import Path

from _common import start_child, start_quicmeet_server  # noqa: I001
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

from client import Session

PASSWORD = "benchmark password"


async def _gather_limited(coros, limit: int):
    semaphore = asyncio.Semaphore(limit)

    async def run(coro):
        async with semaphore:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def make_accounts(address: str, n: int) -> list[bytes]:
    async def one(i: int) -> bytes:
        session = Session(address, reconnect=False)
        await session.connect()
        await session.register(f"user{i:05d}", PASSWORD)
        await session.login(f"user{i:05d}", PASSWORD)
        assert session.token is not None
        token = session.token
        await session.close()
        return token

    return await _gather_limited([one(i) for i in range(n)], 8)


async def resume_all(address: str, tokens: list[bytes], limit: int):
    async def one(token: bytes) -> Session:
        session = Session(address, reconnect=False)
        await session.connect()
        await session.resume(token)
        return session

    start = time.perf_counter()
    sessions = await _gather_limited([one(t) for t in tokens], limit)
    return sessions, time.perf_counter() - start


class BareClient(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reply = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event):
        if isinstance(event, events.StreamDataReceived) and not self.reply.done():
            self.reply.set_result(event.data)


async def bare_all(host: str, port: int, n: int, limit: int, hold: asyncio.Event):
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=["quicmeet/1"], idle_timeout=5.0
    )
    configuration.verify_mode = ssl.CERT_NONE
    ready: list[float] = []
    semaphore = asyncio.Semaphore(limit)

    async def one():
        await semaphore.acquire()
        released = False
        try:
            async with connect(
                host, port, configuration=configuration, create_protocol=BareClient
            ) as client:
                client._quic.send_stream_data(0, b"\x00\x00\x00\x08resume!!")
                client.transmit()
                await client.reply
                ready.append(time.perf_counter())
                semaphore.release()
                released = True
                while not hold.is_set():
                    client._quic.send_ping(0)
                    client.transmit()
                    try:
                        await asyncio.wait_for(hold.wait(), 1.5)
                    except TimeoutError:
                        pass
        finally:
            if not released:
                semaphore.release()

    start = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    while len(ready) < n:
        await asyncio.sleep(0.01)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    return tasks, time.perf_counter() - start


async def run(n: int, limit: int, settle: float, idle: float) -> dict:
    result: dict = {"n": n, "concurrency": limit}

    server = start_quicmeet_server()
    try:
        tokens = await make_accounts(server.address, n)
        await asyncio.sleep(settle)
        base = server.rss_kib()
        sessions, elapsed = await resume_all(server.address, tokens, limit)
        await asyncio.sleep(settle)
        loaded = server.rss_kib()
        result["quicmeet"] = {
            "rss_idle_kib": base,
            "rss_loaded_kib": loaded,
            "kib_per_connection": round((loaded - base) / n, 2),
            "connect_resume_per_s": round(n / elapsed, 1),
            "all_connected": all(s.connected for s in sessions),
        }
        if idle:
            await asyncio.sleep(idle)
            result["quicmeet"]["kib_per_connection_after_idle"] = round(
                (server.rss_kib() - base) / n, 2
            )
            result["quicmeet"]["all_connected_after_idle"] = all(
                s.connected for s in sessions
            )
        for session in sessions:
            await session.close()
    finally:
        server.stop()

    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-bare-"))
    bare = start_child(
        ["bench/_bare_server.py", str(workdir / "cert.pem"), str(workdir / "key.pem")]
    )
    hold = asyncio.Event()
    try:
        await asyncio.sleep(settle)
        base = bare.rss_kib()
        tasks, elapsed = await bare_all(bare.host, bare.port, n, limit, hold)
        await asyncio.sleep(settle)
        loaded = bare.rss_kib()
        result["bare_aioquic"] = {
            "rss_idle_kib": base,
            "rss_loaded_kib": loaded,
            "kib_per_connection": round((loaded - base) / n, 2),
            "connect_request_per_s": round(n / elapsed, 1),
        }
        if idle:
            await asyncio.sleep(idle)
            result["bare_aioquic"]["kib_per_connection_after_idle"] = round(
                (bare.rss_kib() - base) / n, 2
            )
        hold.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        bare.stop()

    q, b = result["quicmeet"], result["bare_aioquic"]
    result["memory_ratio"] = round(q["kib_per_connection"] / b["kib_per_connection"], 3)
    result["rate_ratio"] = round(
        q["connect_resume_per_s"] / b["connect_request_per_s"], 3
    )
    result["goals"] = {
        "memory_ratio_max": 1.3,
        "rate_ratio_min": 0.8,
        "met": result["memory_ratio"] <= 1.3 and result["rate_ratio"] >= 0.8,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="connections per side")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before RSS")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="seconds idle before a second RSS"
    )
    args = parser.parse_args()
    # The client side runs on the standard loop, as the real clients do (the
    # first connection of a process on uvloop's UDP transport was seen to stall).
    print(
        json.dumps(
            asyncio.run(run(args.n, args.concurrency, args.settle, args.idle)), indent=1
        )
    )


if __name__ == "__main__":
    main()
