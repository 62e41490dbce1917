"""Simulcast end to end: real QUIC, a real SFU. One subscriber behind a
300 kbit/s netsim link gets the low layer, the other the top layer; on
clean loopback, one that shows the track small gets the small layer."""

from __future__ import annotations

import asyncio

import pytest

from client.errors import ServerError
from client.media import Call
from codec.errors import ErrorCode
from netsim import ImpairmentProxy, LinkConfig
from tests.client.test_meet import (
    Participant,
    assert_shown_correctly,
    leave_all,
    participant,
    signed_in,
)
from tests.conftest import address

CAPACITY_BPS = 300_000
SIZE = (640, 480)
"""Two layers: 320x240 (0) and 640x480 (1)."""
FPS = 30.0
SETTLE_S = 20.0
"""How long a layer may take to settle: on an idle machine under a second; a
loaded one's stalls read as queueing delay, and the selector then waits
longer before it tries up again."""


async def stats_once(
    member: Participant, publisher: str, holds, timeout: float
) -> dict:
    """``member``'s stats of ``publisher``'s track once ``holds(stats)``, or the
    last ones after ``timeout`` (the assertions that follow say what they were)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stats = member.received().get(publisher)
        if stats is not None and holds(stats) or loop.time() > deadline:
            return stats or {}
        await asyncio.sleep(0.1)


def on_layer(layer: int):
    """True once a picture of ``layer`` (0: 320 wide, 1: 640) was shown: the
    layer changes at its first packet, the width at its first picture."""
    width = SIZE[0] // (2 - layer)
    return lambda stats: stats["layer"] == layer and stats["width"] == width


def shown(stats: dict) -> bool:
    return stats["frames_rendered"] > 0


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
            to_bob = await stats_once(bob, "alice", on_layer(1), SETTLE_S)
            (sent,) = alice.call.stats()["sent"]
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
    # Carol's is not: she started on the low layer (nothing was known of her
    # path) and stayed there once her path was measured, never sent the top
    # one, and it kept moving afterwards (she was not held at the slowest
    # common rate, and bob was not held at hers).
    assert to_carol["layer"] == 0 and to_carol["width"] == 320, to_carol
    assert [layer for _, layer in to_carol["layer_timeline"]] == [0], to_carol
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


async def test_a_small_view_gets_the_small_layer_and_bad_views_change_nothing(server):
    alice = await member(address(server), "alice", None)
    room_id = alice.session.rooms.room_id
    bob_session = await signed_in(address(server), "bob")
    await bob_session.rooms.join(room_id)
    bob = Participant(bob_session, None, alice.source)  # type: ignore[arg-type]
    bob.call = Call(bob_session, [bob.record], view=(320, 240))
    bob.call.start()
    carol = await member(address(server), "carol", room_id)
    members = [alice, bob, carol]
    try:
        # Carol's path, as fast as bob's, takes her up to the top layer; a
        # while later bob's would have too, but for his view.
        to_carol = await stats_once(carol, "alice", on_layer(1), SETTLE_S)
        await asyncio.sleep(2.0)
        to_bob = await stats_once(bob, "alice", shown, SETTLE_S)
        (sent,) = alice.call.stats()["sent"]
        track_id = next(iter(bob.call.receivers))
        rooms = bob_session.rooms
        refused = []
        for width, height, track in (
            (0, 240, track_id),  # one side only
            (9000, 240, track_id),  # larger than a picture may be
            (-1, -1, track_id),
            (320, 240, track_id + 1),  # no such track
        ):
            with pytest.raises(ServerError) as caught:
                await rooms.view_track(track, width, height)
            refused.append(caught.value.code)
        mine = alice.call.senders["camera"].track_id
        with pytest.raises(ServerError) as caught:
            await alice.session.rooms.view_track(mine, 320, 240)
        refused.append(caught.value.code)
        await asyncio.sleep(1.5)
        still = bob.received()["alice"]
        # No limit any more: bob goes up to the top layer.
        bob.call.views.set(track_id, 0, 0)
        opened = await stats_once(bob, "alice", on_layer(1), SETTLE_S)
    finally:
        await leave_all(members)
    # Both on clean loopback: bob's 320x240 view gets the 320x240 layer,
    # carol (no view given) the top one, 640x480.
    assert to_bob["layer"] == 0 and to_bob["width"] == 320, to_bob
    assert to_carol["layer"] == 1 and to_carol["width"] == 640, to_carol
    layers = {layer["layer"]: layer for layer in sent["layers"]}
    assert layers[0]["encoded"] and layers[1]["encoded"], sent
    assert refused == [
        ErrorCode.INVALID_ARGUMENT,
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.NOT_FOUND,
        ErrorCode.INVALID_ARGUMENT,
    ]
    # The refused views changed nothing.
    assert still["layer"] == 0, still
    assert still["layer_switches"] == to_bob["layer_switches"], (still, to_bob)
    assert opened["layer"] == 1 and opened["width"] == 640, opened
    assert_shown_correctly(bob, {"alice"})
