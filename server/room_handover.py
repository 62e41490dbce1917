"""Meetings that outlive their node: each room's record kept in the cluster,
and rooms taken over from a node that died.

A room lives on one node. While it runs, its node gives the cluster the room's
:class:`~server.room_state.RoomRecord` whenever it changes. When the node dies
(or stops with meetings still running), its members reconnect to another node
and rejoin the room there; the first of them makes that node take the room
over from the record, and the others get their seats back as they come, past
the password and the lock, and the host their role. Their clients publish
their tracks again, so the meeting goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from codec.errors import ErrorCode
from codec.messages import RoomElsewhere

from .errors import ServiceError
from .room_state import Room, decode_record, encode_record

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .rooms import RoomService

__all__ = ["RoomHandover"]

log = logging.getLogger("quicmeet.rooms")


class RoomHandover:
    """The rooms of one node, as the rest of the cluster knows them."""

    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self._records: dict[str, bytes] = {}
        """The record last given to the cluster, by room id."""
        self._stopping = False

    def save(self, room: Room) -> None:
        """Give the cluster ``room``'s record if it changed."""
        if self._stopping or room.room_id not in self.rooms.rooms:
            return
        data = encode_record(room.record())
        if self._records.get(room.room_id) != data:
            self._records[room.room_id] = data
            self.rooms.ctx.cluster.room_saved(room.room_id, data)

    def forget(self, room_id: str) -> None:
        """The room closed here (the cluster is told by the room service)."""
        self._records.pop(room_id, None)

    def stop(self) -> None:
        """The node is stopping while meetings run: the members leave as their
        connections close, but the records stay as they are now, so the node
        they move to takes the meetings over as they were."""
        self._stopping = True

    async def find(self, conn: ClientConnection, room_id: str) -> Room | None:
        """A room this node does not hold: send the client to the live node
        that does (a ``ROOM_ELSEWHERE`` error), take it over from a node that
        died, or None when the cluster knows no such room."""
        cluster = self.rooms.ctx.cluster
        held = self.rooms.rooms
        # Twice: another node may take the room over between our two looks.
        for _ in range(2):
            node = await cluster.room_node(room_id)
            if room_id in held:  # taken over here meanwhile
                return held[room_id]
            if node is not None:
                conn.push(RoomElsewhere(room_id=room_id, node=node))
                raise ServiceError(
                    ErrorCode.ROOM_ELSEWHERE, f"the room is on the node at {node}"
                )
            data = await cluster.adopt_room(room_id)
            if room_id in held:
                return held[room_id]
            if data is not None:
                return self._take_over(room_id, data)
        return None

    def _take_over(self, room_id: str, data: bytes) -> Room | None:
        try:
            room = Room.from_record(room_id, decode_record(data))
        except msgspec.DecodeError as exc:
            log.warning("room %s: unreadable record in the cluster: %s", room_id, exc)
            return None
        self._records[room_id] = data
        self.rooms.hold(room)
        self.rooms.ctx.stats["rooms_taken_over"] += 1
        log.info("room %s taken over from a node that died", room_id)
        return room
