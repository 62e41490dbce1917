"""Draining a node before it stops: no new rooms, users who are not in a
meeting sent on to the other nodes, running meetings let end (up to a limit).

A cluster node that gets SIGTERM drains first, so stopping one node for an
upgrade ends nobody's meeting unless it outlasts the limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from codec import CloseCode
from codec.messages import ServerClosing

if TYPE_CHECKING:
    from .app import ServerApp

__all__ = ["drain"]

log = logging.getLogger("quicmeet.server")

POLL = 0.2
"""Seconds between looks at the meetings still running."""


async def drain(app: ServerApp, timeout: float) -> bool:
    """Drain ``app`` for at most ``timeout`` seconds; return whether every
    meeting ended in time. The caller then shuts the node down."""
    app.rooms.stop_accepting()
    moved = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for conn in list(app.connections):
            if conn.closing or app.rooms.in_meeting(conn):
                continue
            # Out of a meeting (or out of one that just ended): off to another
            # node; a client that knows several reconnects there by itself.
            conn.send(ServerClosing(message="this server is stopping; reconnect"))
            conn.close_with(CloseCode.SHUTDOWN, "server draining")
            moved += 1
        meetings = app.rooms.snapshot()["room_members"]
        if meetings == 0:
            log.info("drained: %d connections sent on", moved)
            return True
        if loop.time() >= deadline:
            log.warning("drain limit reached with %d in meetings", meetings)
            return False
        await asyncio.sleep(POLL)
