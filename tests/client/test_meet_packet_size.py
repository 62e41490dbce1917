"""Video follows the packet size the path MTU search confirms: over real QUIC
on loopback, where 1,452-byte packets get through, a meeting's video leaves in
datagrams larger than a 1,200-byte packet carries."""

from __future__ import annotations

import asyncio

from server.sfu import BASE_FORWARDED_DATAGRAM, MAX_FORWARDED_DATAGRAM
from tests.client.test_meet import leave_all, participant
from tests.conftest import address, eventually
from udpio.mtu_probe import set_max_datagram_size


async def test_video_takes_larger_datagrams_once_every_member_confirmed_them(server):
    alice = await participant(address(server), "alice", None)
    bob = await participant(address(server), "bob", alice.session.rooms.room_id)
    sizes: list[int] = []
    deliver = bob.session.rooms.datagram_handler
    assert deliver is not None

    def record(data: bytes) -> None:
        sizes.append(len(data))
        deliver(data)

    bob.session.rooms.datagram_handler = record
    try:
        rooms = (alice.session.rooms, bob.session.rooms)
        # 1,452 bytes less QUIC's 30: every member confirmed it (the searches
        # end within a round trip of each handshake, before the join).
        await eventually(
            lambda: all(
                r.state is not None and r.state.max_datagram == MAX_FORWARDED_DATAGRAM
                for r in rooms
            )
        )
        assert alice.session.rooms.max_media_datagram() == MAX_FORWARDED_DATAGRAM
        await eventually(lambda: any(s > BASE_FORWARDED_DATAGRAM for s in sizes))
        await asyncio.sleep(1.0)
        assert max(sizes) <= MAX_FORWARDED_DATAGRAM
        received = bob.received()["alice"]
        assert received["frames_rendered"] >= 5, received
        # Nothing is lost to size. A frame may still be dropped whole on
        # purpose, by alice's pacer or the SFU's, when a loaded machine makes
        # it leave too late: those are the only frames bob may miss.
        snapshot = server.snapshot()
        assert snapshot["sfu_dropped_too_large"] == 0
        assert received["packets_lost"] == 0
        (sent,) = alice.call.stats()["sent"]  # type: ignore[misc]
        dropped_on_purpose = (
            sent["frames_dropped"]
            + snapshot["sfu_frames_dropped_length"]
            + snapshot["sfu_frames_dropped_delay"]
        )
        assert received["frames_lost"] <= dropped_on_purpose, (received, sent)

        # Bob's path falls back to 1,200 bytes, as two lost confirmations of
        # the server's search would have it: both members hear the room's
        # smaller size, and alice's video follows it from her next frame.
        (conn,) = [
            c
            for c in server.connections
            if c.account is not None and c.account.username == "bob"
        ]
        set_max_datagram_size(conn.quic, 1200)
        conn._path_changed()
        await eventually(
            lambda: all(
                r.state is not None and r.state.max_datagram == BASE_FORWARDED_DATAGRAM
                for r in rooms
            )
        )
        await asyncio.sleep(0.3)
        del sizes[:]
        await eventually(lambda: len(sizes) > 20)
        assert max(sizes) <= BASE_FORWARDED_DATAGRAM
    finally:
        await leave_all([alice, bob])
