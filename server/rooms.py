"""Meeting rooms: create, join, leave and end them; who is in which room.

Rooms live in this process's memory (a room lives on one node). Membership
belongs to the account's live session: when a session moves to a new
connection (the client reconnected after a network change), the seat moves
with it and only the tracks, bound to the old connection, end. When the
session ends (logout, a kick, the connection closing) the member leaves and
every other member is told. Each change pushes ``RoomUpdated`` to every member
and updates the SFU's routes (:mod:`server.sfu`). What members do inside a
room (host powers, invitations, chat, tracks) is :mod:`server.room_actions`.

Joining is throttled per connection (a token bucket) and failed attempts per
account and per address (exponential backoff), so a ~49.5-bit room id cannot
be guessed in practice.

In a cluster, :mod:`server.room_handover` keeps each room's record where
another node takes the meeting over from if this one dies.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from codec.errors import ErrorCode
from codec.messages import (
    CreateRoom,
    EndRoom,
    Event,
    GetRoom,
    JoinRoom,
    LeaveRoom,
    Ok,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomUpdated,
)
from codec.messages.rooms import parse_room_id

from .errors import ServiceError
from .monitor import cpu_wait
from .room_actions import RoomActions
from .room_handover import RoomHandover
from .room_state import Member, Room, account_of, new_room_id
from .sfu import Forwarder
from .storage.models import User
from .throttle import LoginThrottle, TokenBucket

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .context import ServerContext
    from .router import Router

__all__ = ["RoomService"]

ROOM_PLACEMENT_WAIT = 2.0
"""Seconds a new room's reply waits at most for the cluster to learn where the
room lives (past that, Redis is down and the room works on this node only)."""


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    """The running loop's ``call_later``, for the SFU's probes."""
    return asyncio.get_running_loop().call_later(delay, callback)


class RoomService:
    """Handles the requests of :mod:`codec.messages.rooms` and owns the SFU."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.sfu = Forwarder(
            max_queued=config.sfu_max_queued_datagrams,
            max_queue_delay=config.sfu_max_queue_delay,
            clock=ctx.clock.monotonic,
            cpu_wait=cpu_wait,
            call_later=_call_later,
        )
        self.rooms: dict[str, Room] = {}
        self.join_failures = LoginThrottle(
            free_failures=10, base_delay=1.0, max_delay=600.0, forget_after=3600.0
        )
        self._members: dict[ClientConnection, Member] = {}
        self.accepting = True
        self.on_membership: Callable[[int], None] = lambda user_id: None
        """Called with a user's id when the user joined or left a room here
        (the file service's downloads give way to a meeting)."""
        """Whether new rooms are made here (False while the node drains)."""
        self._room_of: dict[int, Room] = {}
        self._join_buckets: dict[ClientConnection, TokenBucket] = {}
        self._owned: Counter[int] = Counter()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self.handover = RoomHandover(self)
        self.actions = RoomActions(self)

    def now(self) -> float:
        """The server's monotonic clock, in seconds."""
        return self.ctx.clock.monotonic()

    def register_handlers(self, router: Router) -> None:
        router.handle(CreateRoom, self.create)
        router.handle(JoinRoom, self.join)
        router.handle(LeaveRoom, self.leave)
        router.handle(GetRoom, self.get_room)
        router.handle(EndRoom, self.end)
        self.actions.register_handlers(router)

    def in_meeting(self, conn: ClientConnection) -> bool:
        """Whether ``conn`` is a member of a room here."""
        return conn in self._members

    def stop_accepting(self) -> None:
        """Refuse new rooms from now on (the node is draining); running meetings
        and joins to them go on."""
        self.accepting = False

    def snapshot(self) -> dict[str, int]:
        """Gauges and SFU counters for the server's stats."""
        return {
            "rooms": len(self.rooms),
            "room_members": len(self._members),
            **self.sfu.snapshot(),
        }

    # -- joining and leaving ----------------------------------------------------

    async def create(self, conn: ClientConnection, req: CreateRoom) -> RoomJoined:
        account = account_of(conn)
        config = self.ctx.config
        if not self.accepting:
            raise ServiceError(
                ErrorCode.SHUTTING_DOWN,
                "this server is about to stop; make the room on another one",
            )
        if self._owned[account.user_id] >= config.max_rooms_per_user:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"you already have {config.max_rooms_per_user} open rooms",
            )
        max_members = min(
            req.max_members or config.max_room_members, config.max_room_members
        )
        room_id = new_room_id()
        while room_id in self.rooms:
            room_id = new_room_id()
        display_name = await self._display_name(account.user_id)
        if conn.closing or conn.account is not account:
            raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "the session ended")
        room = Room(room_id, account.user_id, max_members, req.password)
        self.rooms[room_id] = room
        self.ctx.cluster.room_opened(room_id)
        self._owned[account.user_id] += 1
        self.ctx.stats["rooms_created"] += 1
        current = self._members.get(conn)
        if current is not None:
            self.remove(current, "left", "you created another room")
        self._admit(conn, room, display_name)
        # The id goes out in the reply: another node asked to join it must
        # already find where it lives.
        await self.ctx.cluster.flushed(ROOM_PLACEMENT_WAIT)
        return RoomJoined(rid=req.rid, room=room.snapshot())

    async def join(self, conn: ClientConnection, req: JoinRoom) -> RoomJoined:
        account = account_of(conn)
        now = self.now()
        bucket = self._join_buckets.get(conn)
        if bucket is None:
            bucket = self._join_buckets[conn] = TokenBucket(
                self.ctx.config.room_join_rate, 5.0, now
            )
        if not bucket.take(now):
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                "too many attempts to join rooms",
                int(bucket.wait_time(now) * 1000) + 1,
            )
        keys = [f"user:{account.user_id}", f"addr:{conn.peer_host}"]
        wait = max(self.join_failures.retry_after(key, now) for key in keys)
        if wait > 0:
            raise ServiceError(
                ErrorCode.LOGIN_THROTTLED,
                "too many failed attempts to join rooms; wait before trying again",
                int(wait * 1000) + 1,
            )
        room_id = parse_room_id(req.room_id)
        room = self.rooms.get(room_id) if room_id is not None else None
        if room is None and room_id is not None:
            room = await self.handover.find(conn, room_id)
        if room is None:
            self._failed(keys, now)
            raise ServiceError(ErrorCode.NOT_FOUND, "there is no room with this id")
        current = self._members.get(conn)
        if current is not None and room.members.get(account.user_id) is current:
            return RoomJoined(rid=req.rid, room=room.snapshot())
        if account.user_id not in room.returning:
            self._admission(room, account.user_id, req.password, keys, now)
        if len(room.members) >= room.max_members:
            raise ServiceError(
                ErrorCode.ROOM_FULL, f"the room is full ({room.max_members} members)"
            )
        display_name = await self._display_name(account.user_id)
        if conn.closing or conn.account is not account:
            raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "the session ended")
        if room.room_id not in self.rooms or len(room.members) >= room.max_members:
            raise ServiceError(ErrorCode.NOT_FOUND, "the room closed or filled up")
        room.invitations.pop(account.user_id, None)
        room.banned.discard(account.user_id)
        current = self._members.get(conn)
        if current is not None:
            self.remove(current, "left", "you joined another room")
        self._admit(conn, room, display_name)
        return RoomJoined(rid=req.rid, room=room.snapshot())

    def _admission(
        self,
        room: Room,
        user_id: int,
        password: str | None,
        keys: list[str],
        now: float,
    ) -> None:
        """Refuse ``user_id`` if the room's removals, lock or password keep
        them out (an invitation from the host passes all three)."""
        invitation = room.invitation(user_id, now)
        host_invited = invitation is not None and invitation.by_host
        if user_id in room.banned and not host_invited:
            raise ServiceError(
                ErrorCode.FORBIDDEN, "the host removed you from this room"
            )
        if room.locked and not host_invited:
            raise ServiceError(ErrorCode.FORBIDDEN, "the room is locked")
        if invitation is None and not room.password_matches(password):
            self._failed(keys, now)
            message = (
                "wrong room password" if password else "this room needs a password"
            )
            raise ServiceError(ErrorCode.FORBIDDEN, message)

    def _failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            self.join_failures.failure(key, now)

    def _admit(self, conn: ClientConnection, room: Room, display_name: str) -> None:
        account = account_of(conn)
        member = Member(
            user_id=account.user_id,
            username=account.username,
            display_name=display_name,
            session_id=account.session_id,
            conn=conn,
            joined_ms=self.ctx.clock.wall_ms(),
        )
        room.add(member)
        self._members[conn] = member
        self._room_of[account.user_id] = room
        timer = self._expiry.pop(room.room_id, None)
        if timer is not None:
            timer.cancel()
        self.changed(room, skip=member)
        self.on_membership(account.user_id)

    async def leave(self, conn: ClientConnection, req: LeaveRoom) -> Ok:
        self.remove(self.member(conn), None, "")
        return Ok(rid=req.rid)

    def remove(self, member: Member, reason: str | None, message: str) -> None:
        """Take ``member`` out of its room and free what it held; tell it why
        unless ``reason`` is None (it asked, and gets a reply instead)."""
        room = self._room_of.pop(member.user_id)
        del self._members[member.conn]
        self.sfu.remove(member.conn)
        room.remove(member)
        if reason is not None:
            member.conn.push(
                RoomLeft(room_id=room.room_id, reason=reason, message=message)
            )
        if room.members:
            self.changed(room)
        else:
            self.handover.save(room)
            self._expiry[room.room_id] = asyncio.get_running_loop().call_later(
                self.ctx.config.empty_room_ttl, self._close_room, room
            )
        self.on_membership(member.user_id)

    def hold(self, room: Room) -> None:
        """Hold ``room``, taken over from a node that died, empty until its
        members come back (it closes after the empty-room time if none does)."""
        self.rooms[room.room_id] = room
        self._owned[room.owner_id] += 1
        self._expiry[room.room_id] = asyncio.get_running_loop().call_later(
            self.ctx.config.empty_room_ttl, self._close_room, room
        )

    def _close_room(self, room: Room) -> None:
        self._expiry.pop(room.room_id, None)
        if self.rooms.pop(room.room_id, None) is not None:
            self.handover.forget(room.room_id)
            self.ctx.cluster.room_closed(room.room_id)
            self._owned[room.owner_id] -= 1
            if self._owned[room.owner_id] <= 0:
                del self._owned[room.owner_id]

    def session_ended(self, conn: ClientConnection) -> None:
        """The connection closed or logged out: its member leaves, unless the
        same session lives on in a newer connection, where the seat moves."""
        self._join_buckets.pop(conn, None)
        member = self._members.get(conn)
        if member is None:
            return
        successor = self.ctx.presence.connection(member.user_id)
        if (
            successor is not None
            and successor is not conn
            and successor.account is not None
            and successor.account.session_id == member.session_id
            and successor not in self._members
        ):
            del self._members[conn]
            self.sfu.remove(conn)
            member.conn = successor
            member.tracks.clear()
            self._members[successor] = member
            room = self._room_of[member.user_id]
            room.version += 1
            self.changed(room)
            return
        self.remove(member, "left", "your session ended")

    async def get_room(self, conn: ClientConnection, req: GetRoom) -> RoomInfo:
        return RoomInfo(
            rid=req.rid, room=self._room_of[self.member(conn).user_id].snapshot()
        )

    # -- host powers ------------------------------------------------------------

    async def end(self, conn: ClientConnection, req: EndRoom) -> Ok:
        room = self.hosted_room(conn)
        for member in list(room.members.values()):
            self.remove(member, "ended", "the host ended the meeting")
        timer = self._expiry.pop(room.room_id, None)
        if timer is not None:
            timer.cancel()
        self._close_room(room)
        return Ok(rid=req.rid)

    def hosted_room(self, conn: ClientConnection) -> Room:
        member = self.member(conn)
        room = self._room_of[member.user_id]
        if room.host_id != member.user_id:
            raise ServiceError(ErrorCode.FORBIDDEN, "only the host may do this")
        return room

    # -- helpers ----------------------------------------------------------------

    def room_of(self, member: Member) -> Room:
        """The room ``member`` is in."""
        return self._room_of[member.user_id]

    def member(self, conn: ClientConnection) -> Member:
        """The member ``conn`` is, or a NOT_FOUND error."""
        member = self._members.get(conn)
        if member is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "you are not in a room")
        return member

    def rename(self, user_id: int, display_name: str) -> None:
        """``user_id`` has a new display name: show it in their room, if any."""
        room = self._room_of.get(user_id)
        member = room.members.get(user_id) if room is not None else None
        if room is None or member is None or member.display_name == display_name:
            return
        member.display_name = display_name
        room.version += 1
        self.changed(room)

    async def _display_name(self, user_id: int) -> str:
        def lookup() -> str:
            user = User.get_or_none(User.id == user_id)
            return "" if user is None else user.display_name

        return await self.ctx.storage.run(lookup)

    def path_changed(self, conn: ClientConnection) -> None:
        """``conn`` carries media datagrams of another size now (its path MTU
        search found a larger packet size, or fell back): its room's members
        are sent the room's state again, with the size every member carries
        (rare: once after a search that ends after the join, and on a
        fallback)."""
        member = self._members.get(conn)
        room = self._room_of.get(member.user_id) if member is not None else None
        if room is None:
            return
        room.version += 1
        self.changed(room)

    def changed(self, room: Room, skip: Member | None = None) -> None:
        """Route the room's media anew and push its state to the members."""
        self.sfu.set_room(
            room,
            ((m.conn, m.tracks.keys()) for m in room.members.values()),
            {
                t.track_id: (t.width, t.height, t.fps)
                for m in room.members.values()
                for t in m.tracks.values()
                if t.codec == "h264"
            },
        )
        event = RoomUpdated(room=room.snapshot())
        for member in room.members.values():
            if member is not skip:
                member.conn.push(event)
        self.handover.save(room)

    @staticmethod
    def broadcast(room: Room, event: Event) -> None:
        for member in room.members.values():
            member.conn.push(event)
