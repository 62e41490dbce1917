"""Simulcast end to end: real QUIC, a real SFU, one subscriber behind a
300 kbit/s netsim link. It gets the low layer, the other the top layer."""

from __future__ import annotations

import asyncio

from netsim import ImpairmentProxy, LinkConfig
from tests.client.test_meet import (
    Participant,
    assert_shown_correctly,
    leave_all,
    participant,
)
from tests.conftest import address

CAPACITY_BPS = 300_000
SIZE = (640, 480)
"""Two layers: 320x240 (0) and 640x480 (1)."""
FPS = 30.0


async def member(server_address: str, name: str, room_id: str | None) -> Participant:
    """A member who publishes 640x480 video when it creates the room, and
    only watches when it joins one."""
    return await participant(
        server_address, name, room_id, size=SIZE, fps=FPS, publish=room_id is None
    )


async def test_a_slow_subscriber_gets_the_low_layer_the_other_the_top(server):
    slow = LinkConfig(delay_s=0.025, rate_bps=CAPACITY_BPS, queue_delay_s=0.3)
    async with ImpairmentProxy(upstream=server.address, down=slow, seed=5) as proxy:
        host, port = proxy.listen_address
        alice = await member(address(server), "alice", None)
        room_id = alice.session.rooms.room_id
        bob = await member(address(server), "bob", room_id)
        carol = await member(f"{host}:{port}", "carol", room_id)
        members = [alice, bob, carol]
        try:
            await asyncio.sleep(8.0)
            (sent,) = alice.call.stats()["sent"]
            to_bob = bob.received()["alice"]
            to_carol = carol.received()["alice"]
            carol_shown = len(carol.shown)
            await asyncio.sleep(1.0)
            carol_later = len(carol.shown)
        finally:
            await leave_all(members)
        link = proxy.stats.down
    # Bob's path is fast: the top layer, 640x480.
    assert to_bob["layer"] == 1 and to_bob["width"] == 640, to_bob
    assert to_bob["frames_rendered"] >= 0.5 * FPS * 6, to_bob
    # Carol's is not: the SFU switched her to the low layer, and it kept
    # moving afterwards (she was not held at the slowest common rate, and
    # bob was not held at hers).
    assert to_carol["layer"] == 0 and to_carol["width"] == 320, to_carol
    assert to_carol["layer_switches"] >= 1, to_carol
    assert carol_later > carol_shown
    # Both layers were encoded, the top asked for more than carol's link
    # carries (or not limited at all): she did not set bob's rate.
    layers = {layer["layer"]: layer for layer in sent["layers"]}
    assert layers[0]["encoded"] and layers[1]["encoded"], sent
    assert layers[0]["frames_encoded"] > 0 and layers[1]["frames_encoded"] > 0
    top_target = layers[1]["target_bps"]
    assert top_target is None or top_target > CAPACITY_BPS, sent
    # The switch froze carol's picture no longer than a keyframe's round
    # trip on a slow link (generous: a loaded machine).
    longest = max((r["gap_ms"] for r in to_carol["freeze_log"]), default=0)
    assert longest < 2000, to_carol["freeze_log"]
    assert link.dropped_queue <= 0.1 * link.packets_in, link
    assert_shown_correctly(bob, {"alice"})
    assert_shown_correctly(carol, {"alice"}, intact=0.75)
