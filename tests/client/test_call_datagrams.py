"""Datagrams a call cannot use (malformed, or about a track it neither
receives nor publishes) are counted and dropped; nothing of them is kept and
the call goes on."""

from __future__ import annotations

import asyncio

from client import Session
from client.media import Call, SyntheticSource
from codec.media import KeyframeRequest, RateLimit
from tests.conftest import PASSWORD, address


async def test_unusable_datagrams_are_counted_and_change_nothing(server):
    session = Session(address(server))
    await session.connect()
    await session.register("alice", PASSWORD)
    await session.login("alice", PASSWORD)
    await session.rooms.create()
    call = Call(session)
    call.start()
    try:
        sender = await asyncio.wait_for(
            call.publish_video(SyntheticSource(160, 120, 15), "camera"), 20
        )
        assert sender.track_id is not None
        unknown = (sender.track_id + 1) & 0xFFFFFFFF
        for garbage in (b"", b"\xff", b"\x00" * 3, bytes(range(40))):
            call._on_datagram(garbage)
        call._on_datagram(RateLimit(unknown, 1_000).serialize())
        call._on_datagram(KeyframeRequest(unknown, 0).serialize())
        stats = call.stats()
        assert stats["datagrams_malformed"] == 4
        assert stats["datagrams_unknown_track"] == 2
        assert stats["rate_limits"] == {}
        # A limit for our own track is taken.
        call._on_datagram(RateLimit(sender.track_id, 200_000).serialize())
        assert call.stats()["rate_limits"] == {str(sender.track_id): 200_000}
    finally:
        await call.close()
        await session.close()
