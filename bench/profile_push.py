"""How long a profile change takes to reach a friend, over real QUIC.

One user changes their display name (``UpdateProfile``) ``--changes`` times,
one at a time; each time the friend's session waits for the ``ProfileChanged``
push. Latency is from sending the request to the push arriving at the friend
(both clients in this process, on one clock). The issue asks for within a
second in the desktop app; the app adds the engine and one UI tick (15 ms)
to these figures. Prints one JSON object.

    python bench/profile_push.py --changes 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _common import percentile, start_quicmeet_server  # noqa: I001

from client import Session
from codec.messages import ProfileChanged, Reply, RequestFriend, RespondFriend

PASSWORD = "benchmark password"


async def signed_in(address: str, name: str) -> Session:
    session = Session(address, reconnect=False)
    await session.connect()
    await session.register(name, PASSWORD)
    await session.login(name, PASSWORD)
    return session


async def next_change(session: Session, timeout: float) -> ProfileChanged:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await session.next_event(max(0.01, deadline - loop.time()))
        if isinstance(event, ProfileChanged):
            return event


async def run(changes: int) -> dict[str, object]:
    server = start_quicmeet_server(["--request-rate", "1000000"])
    try:
        changer = await signed_in(server.address, "changer")
        friend = await signed_in(server.address, "friend")
        await changer.call(RequestFriend, Reply, username="friend")
        await friend.call(RespondFriend, Reply, username="changer", accept=True)
        latencies_ms = []
        for i in range(changes):
            name = f"Changer {i}"
            start = time.perf_counter()
            await changer.update_profile(display_name=name)
            event = await next_change(friend, 10.0)
            latencies_ms.append((time.perf_counter() - start) * 1000)
            assert event.profile.display_name == name, event
        await changer.close()
        await friend.close()
    finally:
        server.stop()
    return {
        "changes": changes,
        "latency_ms": {
            "p50": round(percentile(latencies_ms, 50), 2),
            "p95": round(percentile(latencies_ms, 95), 2),
            "max": round(max(latencies_ms), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.changes))))


if __name__ == "__main__":
    main()
