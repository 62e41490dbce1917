"""Datagrams a call cannot use (malformed, or about a track it neither
receives nor publishes) are counted and dropped; nothing of them is kept and
the call goes on."""

from __future__ import annotations

import asyncio

from client import Session
from client.media import Call, SyntheticSource
from client.quic_adapter import congestion_control
from codec.media import NO_LIMIT_BPS, KeyframeRequest, RateLimit
from tests.conftest import PASSWORD, address


async def alone_in_a_room(server) -> tuple[Session, Call]:
    """A new account's session in a room of its own, with a started call."""
    session = Session(address(server))
    await session.connect()
    await session.register("alice", PASSWORD)
    await session.login("alice", PASSWORD)
    await session.rooms.create()
    call = Call(session)
    call.start()
    return session, call


async def test_unusable_datagrams_are_counted_and_change_nothing(server):
    session, call = await alone_in_a_room(server)
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
        # "No limit" reads as None, not as 2**32 - 1 bits per second.
        call._on_datagram(RateLimit(sender.track_id, NO_LIMIT_BPS).serialize())
        stats = call.stats()
        assert stats["rate_limits"] == {str(sender.track_id): None}
        assert stats["rate_limit_timeline"][-1][1:] == [sender.track_id, None]
    finally:
        await call.close()
        await session.close()


async def test_layer_limits_for_layers_a_track_lacks_are_counted_and_dropped(server):
    session, call = await alone_in_a_room(server)
    try:
        # 640x480 is two layers (0 and 1); 160x120 is one.
        layered = await asyncio.wait_for(
            call.publish_video(SyntheticSource(640, 480, 15), "camera"), 20
        )
        single = await asyncio.wait_for(
            call.publish_video(SyntheticSource(160, 120, 15), "screen"), 20
        )
        assert layered.track_id is not None and single.track_id is not None
        call._on_datagram(RateLimit(layered.track_id, 100_000, 2).serialize())
        call._on_datagram(RateLimit(single.track_id, 100_000, 0).serialize())
        malformed = bytearray(RateLimit(layered.track_id, 100_000, 0).serialize())
        malformed[1] = 0x83  # layer 3: there are at most three
        call._on_datagram(bytes(malformed))
        stats = call.stats()
        assert stats["datagrams_unknown_layer"] == 2
        assert stats["datagrams_malformed"] == 1
        (camera,) = [s for s in stats["sent"] if s["kind"] == "camera"]
        assert [layer["encoded"] for layer in camera["layers"]] == [False, True]
        # A limit for a layer the track has is taken: layer 0 is encoded.
        call._on_datagram(RateLimit(layered.track_id, 100_000, 0).serialize())
        (camera,) = [s for s in call.stats()["sent"] if s["kind"] == "camera"]
        assert camera["layers"][0]["encoded"]
        # At most what the SFU asked (less when the track's budget is small).
        assert 0 < camera["layers"][0]["target_bps"] <= 100_000
    finally:
        await call.close()
        await session.close()


async def test_the_window_makes_room_for_media_only_while_the_call_runs(server):
    session, call = await alone_in_a_room(server)
    controller = congestion_control(session._proto.quic)
    try:
        await asyncio.wait_for(
            call.publish_video(SyntheticSource(160, 120, 15), "camera"), 20
        )
        for _ in range(100):
            if controller.media_rate > 0:
                break
            await asyncio.sleep(0.05)
        assert controller.media_rate > 0
    finally:
        await call.close()
    try:
        # The window's media floor ends with the call.
        assert controller.media_rate == 0
        assert controller.media_window() == 0
    finally:
        await session.close()
