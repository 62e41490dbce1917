"""Media that fits its link, end to end: real QUIC through a netsim link."""

from __future__ import annotations

import asyncio

from netsim import ImpairmentProxy, LinkConfig
from tests.client.test_meet import assert_shown_correctly, leave_all, participant
from tests.conftest import address

CAPACITY_BPS = 300_000


async def test_a_slow_uplink_is_followed_and_the_picture_keeps_moving(server):
    slow = LinkConfig(delay_s=0.025, rate_bps=CAPACITY_BPS, queue_delay_s=0.3)
    async with ImpairmentProxy(upstream=server.address, up=slow, seed=3) as proxy:
        host, port = proxy.listen_address
        alice = await participant(f"{host}:{port}", "alice", None)
        room_id = alice.session.rooms.room_id
        bob = await participant(address(server), "bob", room_id)
        members = [alice, bob]
        try:
            await asyncio.sleep(8.0)
            sent = alice.call.stats()["sent"][0]
            hop = alice.call.stats()["hop"]
            got = bob.received()["alice"]
        finally:
            await leave_all(members)
        link = proxy.stats.up
    # The estimate came from feedback and stays near what the link carries.
    assert hop["feedback_received"] > 20, hop
    assert hop["estimate_bps"] < 1.5 * CAPACITY_BPS, hop
    # What alice sent (video bytes over the run) fits the link.
    assert 0 < sent["bitrate_bps"] < CAPACITY_BPS, sent
    # The bottleneck's queue never overflowed for long: few packets lost.
    assert link.dropped_queue <= 0.05 * link.packets_in, link
    # The picture keeps moving: frames all along (half the frame rate on a
    # loaded machine) and every one intact.
    assert got["frames_rendered"] >= 0.5 * 15 * 6, got
    assert_shown_correctly(bob, {"alice"})


async def test_a_slow_downlink_limits_the_publisher_through_the_sfu(server):
    slow = LinkConfig(delay_s=0.025, rate_bps=CAPACITY_BPS, queue_delay_s=0.3)
    async with ImpairmentProxy(upstream=server.address, down=slow, seed=4) as proxy:
        host, port = proxy.listen_address
        alice = await participant(address(server), "alice", None)
        room_id = alice.session.rooms.room_id
        bob = await participant(f"{host}:{port}", "bob", room_id)
        members = [alice, bob]
        try:
            await asyncio.sleep(8.0)
            stats = alice.call.stats()
            got = bob.received()["alice"]
        finally:
            await leave_all(members)
    # Alice's own hop is fast, but bob's path from the SFU is not: the SFU
    # told her so, and her track was held near what bob's path takes.
    (track,) = stats["sent"]
    assert str(track["track_id"]) in stats["rate_limits"], stats["rate_limits"]
    assert track["bitrate_bps"] < 2 * CAPACITY_BPS, track
    assert got["frames_rendered"] >= 0.5 * 15 * 6, got
    assert_shown_correctly(bob, {"alice"})
