"""A room state that arrives while a track is being announced does not make
the call announce it a second time (the server refuses the second with
CONFLICT, and whichever of the two lost failed: the caller's own publish, or
a warning and a track announced twice)."""

from __future__ import annotations

import asyncio

from client import Session
from client.media import Call, SyntheticSource
from tests.conftest import PASSWORD, address


async def test_a_state_during_the_announcement_does_not_announce_again(server, caplog):
    session = Session(address(server))
    await session.connect()
    await session.register("alice", PASSWORD)
    await session.login("alice", PASSWORD)
    await session.rooms.create()
    call = Call(session)
    call.start()
    try:
        publishing = asyncio.ensure_future(
            call.publish_video(SyntheticSource(160, 120, 15), "camera")
        )
        await asyncio.sleep(0)  # up to the publish's first wait
        assert call.senders["camera"].track_id is None  # not announced yet
        # The room's state as it stood before the track was announced: what
        # arrives when someone joins just then.
        call._sync(session.rooms.state)
        sender = await asyncio.wait_for(publishing, 20)
        assert sender.track_id is not None
        await asyncio.sleep(0.5)  # a second announcement would be answered by now
        tracks = [t for t in session.rooms.state.tracks if t.owner == "alice"]
        assert [t.track_id for t in tracks] == [sender.track_id]
        assert "could not announce" not in caplog.text
    finally:
        await call.close()
        await session.close()
