"""The room state a client keeps when the server's replies and pushes cross.

The server answers a join on the request's stream and pushes room updates on
streams of their own, so an update it sent after the reply can arrive first.
"""

from __future__ import annotations

import asyncio

from codec.messages import JoinRoom, RoomUpdated


async def test_an_update_that_overtakes_the_join_reply_is_kept(server, user):
    alice, bob, carol = await user("alice"), await user("bob"), await user("carol")
    room = await alice.rooms.create()
    three = asyncio.Event()

    def seen(event: object) -> None:
        if isinstance(event, RoomUpdated) and len(event.room.members) == 3:
            three.set()

    bob.add_event_hook(seen)
    call = bob.call

    async def overtaken(request, reply_type, **fields):
        # Bob's reply is held back until carol's arrival, which the server
        # pushed after it, has reached him: the order streams may take.
        reply = await call(request, reply_type, **fields)
        if request is JoinRoom:
            await carol.rooms.join(room.room_id)
            await asyncio.wait_for(three.wait(), 10)
        return reply

    bob.call = overtaken
    await bob.rooms.join(room.room_id)
    assert [m.username for m in bob.rooms.state.members] == ["alice", "bob", "carol"]
