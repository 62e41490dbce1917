"""Meeting rooms: create, join, leave, end; host powers; invitations; chat; tracks.

Rooms live in this process's memory (a room lives on one node). Membership
belongs to the account's live session: when a session moves to a new
connection (the client reconnected after a network change), the seat moves
with it and only the tracks, bound to the old connection, end. When the
session ends (logout, a kick, the connection closing) the member leaves and
every other member is told. Each change pushes ``RoomUpdated`` to every member
and updates the SFU's routes (:mod:`server.sfu`).

Joining is throttled per connection (a token bucket) and failed attempts per
account and per address (exponential backoff), so a ~49.5-bit room id cannot
be guessed in practice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

from codec.errors import ErrorCode
from codec.messages import (
    AskToMute,
    CreateRoom,
    EndRoom,
    Event,
    GetRoom,
    InviteToRoom,
    JoinRoom,
    LeaveRoom,
    LockRoom,
    MuteRequested,
    Ok,
    PublishTrack,
    RemoveMember,
    RoomChat,
    RoomInfo,
    RoomInvitation,
    RoomJoined,
    RoomLeft,
    RoomUpdated,
    SendRoomChat,
    SetMemberState,
    TrackPublished,
    TransferHost,
    UnpublishTrack,
)
from codec.messages.rooms import MAX_ROOM_CHAT_BYTES, RoomTrack, parse_room_id

from .errors import ServiceError
from .room_state import Invitation, Member, Room, Track, new_room_id
from .sfu import Forwarder
from .storage.models import Friendship, User
from .throttle import LoginThrottle, TokenBucket
from .timeutil import now_ms

if TYPE_CHECKING:
    from .app import ServerApp
    from .connection import Account, ClientConnection

__all__ = ["RoomService"]

INVITATION_TTL = 300.0
"""Seconds an invitation stays valid."""
MAX_INVITATIONS = 64
"""Pending invitations one room may hold."""
MAX_TRACK_ID = 2**32 - 1


class RoomService:
    """Handles the requests of :mod:`codec.messages.rooms` and owns the SFU."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app
        config = app.config
        self.sfu = Forwarder(
            clock=self._now,
            max_queued=config.sfu_max_queued_datagrams,
        )
        self.rooms: dict[str, Room] = {}
        self.join_failures = LoginThrottle(
            free_failures=10, base_delay=1.0, max_delay=600.0, forget_after=3600.0
        )
        self._members: dict[ClientConnection, Member] = {}
        self._room_of: dict[int, Room] = {}
        self._join_buckets: dict[ClientConnection, TokenBucket] = {}
        self._owned: Counter[int] = Counter()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._next_track_id = 1

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def register_handlers(self, app: ServerApp) -> None:
        app.handle(CreateRoom, self.create)
        app.handle(JoinRoom, self.join)
        app.handle(LeaveRoom, self.leave)
        app.handle(GetRoom, self.get_room)
        app.handle(EndRoom, self.end)
        app.handle(LockRoom, self.lock)
        app.handle(RemoveMember, self.remove_member)
        app.handle(AskToMute, self.ask_to_mute)
        app.handle(TransferHost, self.transfer_host)
        app.handle(InviteToRoom, self.invite)
        app.handle(SetMemberState, self.set_member_state)
        app.handle(SendRoomChat, self.chat)
        app.handle(PublishTrack, self.publish)
        app.handle(UnpublishTrack, self.unpublish)

    def snapshot(self) -> dict[str, int]:
        """Gauges and SFU counters for the server's stats."""
        return {
            "rooms": len(self.rooms),
            "room_members": len(self._members),
            **self.sfu.snapshot(),
        }

    # -- joining and leaving ----------------------------------------------------

    async def create(self, conn: ClientConnection, req: CreateRoom) -> RoomJoined:
        account = _account(conn)
        config = self.app.config
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
        self._owned[account.user_id] += 1
        self.app.stats["rooms_created"] += 1
        current = self._members.get(conn)
        if current is not None:
            self._remove(current, "left", "you created another room")
        self._admit(conn, room, display_name)
        return RoomJoined(rid=req.rid, room=room.snapshot())

    async def join(self, conn: ClientConnection, req: JoinRoom) -> RoomJoined:
        account = _account(conn)
        now = self._now()
        bucket = self._join_buckets.get(conn)
        if bucket is None:
            bucket = self._join_buckets[conn] = TokenBucket(
                self.app.config.room_join_rate, 5.0, now
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
        if room is None:
            self._failed(keys, now)
            raise ServiceError(ErrorCode.NOT_FOUND, "there is no room with this id")
        current = self._members.get(conn)
        if current is not None and room.members.get(account.user_id) is current:
            return RoomJoined(rid=req.rid, room=room.snapshot())
        invitation = room.invitation(account.user_id, now)
        host_invited = invitation is not None and invitation.by_host
        if account.user_id in room.banned and not host_invited:
            raise ServiceError(
                ErrorCode.FORBIDDEN, "the host removed you from this room"
            )
        if room.locked and not host_invited:
            raise ServiceError(ErrorCode.FORBIDDEN, "the room is locked")
        if invitation is None and not room.password_matches(req.password):
            self._failed(keys, now)
            message = (
                "wrong room password" if req.password else "this room needs a password"
            )
            raise ServiceError(ErrorCode.FORBIDDEN, message)
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
            self._remove(current, "left", "you joined another room")
        self._admit(conn, room, display_name)
        return RoomJoined(rid=req.rid, room=room.snapshot())

    def _failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            self.join_failures.failure(key, now)

    def _admit(self, conn: ClientConnection, room: Room, display_name: str) -> None:
        account = _account(conn)
        member = Member(
            user_id=account.user_id,
            username=account.username,
            display_name=display_name,
            session_id=account.session_id,
            conn=conn,
            joined_ms=now_ms(),
        )
        room.add(member)
        self._members[conn] = member
        self._room_of[account.user_id] = room
        timer = self._expiry.pop(room.room_id, None)
        if timer is not None:
            timer.cancel()
        self._changed(room, skip=member)

    async def leave(self, conn: ClientConnection, req: LeaveRoom) -> Ok:
        self._remove(self._member(conn), None, "")
        return Ok(rid=req.rid)

    def _remove(self, member: Member, reason: str | None, message: str) -> None:
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
            self._changed(room)
        else:
            self._expiry[room.room_id] = asyncio.get_running_loop().call_later(
                self.app.config.empty_room_ttl, self._close_room, room
            )

    def _close_room(self, room: Room) -> None:
        self._expiry.pop(room.room_id, None)
        if self.rooms.pop(room.room_id, None) is not None:
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
        successor = self.app.presence.connection(member.user_id)
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
            self._changed(room)
            return
        self._remove(member, "left", "your session ended")

    async def get_room(self, conn: ClientConnection, req: GetRoom) -> RoomInfo:
        return RoomInfo(
            rid=req.rid, room=self._room_of[self._member(conn).user_id].snapshot()
        )

    # -- host powers ------------------------------------------------------------

    async def end(self, conn: ClientConnection, req: EndRoom) -> Ok:
        room = self._hosted_room(conn)
        for member in list(room.members.values()):
            self._remove(member, "ended", "the host ended the meeting")
        timer = self._expiry.pop(room.room_id, None)
        if timer is not None:
            timer.cancel()
        self._close_room(room)
        return Ok(rid=req.rid)

    async def lock(self, conn: ClientConnection, req: LockRoom) -> Ok:
        room = self._hosted_room(conn)
        if room.locked != req.locked:
            room.locked = req.locked
            room.version += 1
            self._changed(room)
        return Ok(rid=req.rid)

    async def remove_member(self, conn: ClientConnection, req: RemoveMember) -> Ok:
        room = self._hosted_room(conn)
        target = self._target(room, conn, req.username)
        room.banned.add(target.user_id)
        room.invitations.pop(target.user_id, None)
        self._remove(target, "removed", "the host removed you from the meeting")
        return Ok(rid=req.rid)

    async def ask_to_mute(self, conn: ClientConnection, req: AskToMute) -> Ok:
        room = self._hosted_room(conn)
        target = self._target(room, conn, req.username)
        target.conn.push(
            MuteRequested(room_id=room.room_id, by=_account(conn).username)
        )
        return Ok(rid=req.rid)

    async def transfer_host(self, conn: ClientConnection, req: TransferHost) -> Ok:
        room = self._hosted_room(conn)
        target = self._target(room, conn, req.username)
        room.host_id = target.user_id
        room.version += 1
        self._changed(room)
        return Ok(rid=req.rid)

    def _hosted_room(self, conn: ClientConnection) -> Room:
        member = self._member(conn)
        room = self._room_of[member.user_id]
        if room.host_id != member.user_id:
            raise ServiceError(ErrorCode.FORBIDDEN, "only the host may do this")
        return room

    @staticmethod
    def _target(room: Room, conn: ClientConnection, username: str) -> Member:
        target = room.member_named(username)
        if target is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"{username} is not in this room")
        if target.conn is conn:
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, "not to yourself")
        return target

    # -- members ----------------------------------------------------------------

    async def invite(self, conn: ClientConnection, req: InviteToRoom) -> Ok:
        member = self._member(conn)
        room = self._room_of[member.user_id]
        name = req.username.lower()

        def lookup() -> tuple[int, bool] | None:
            user = User.get_or_none(User.username == name)
            if user is None:
                return None
            friends = (
                Friendship.select()
                .where(
                    (Friendship.user == member.user_id) & (Friendship.friend == user.id)
                )
                .exists()
            )
            return user.id, friends

        found = await self.app.storage.run(lookup)
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no user named {name}")
        user_id, friends = found
        if not friends:
            raise ServiceError(ErrorCode.FORBIDDEN, "you can invite only your friends")
        if user_id in room.members:
            raise ServiceError(ErrorCode.CONFLICT, f"{name} is already in the room")
        target = self.app.presence.connection(user_id)
        if target is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"{name} is not online")
        if member.user_id not in room.members:
            raise ServiceError(ErrorCode.NOT_FOUND, "you left the room")
        now = self._now()
        room.prune_invitations(now)
        if len(room.invitations) >= MAX_INVITATIONS and user_id not in room.invitations:
            raise ServiceError(ErrorCode.QUOTA_EXCEEDED, "too many pending invitations")
        room.invitations[user_id] = Invitation(
            expires_at=now + INVITATION_TTL, by_host=room.host_id == member.user_id
        )
        target.push(
            RoomInvitation(
                room_id=room.room_id,
                inviter=member.username,
                expires_ms=now_ms() + int(INVITATION_TTL * 1000),
            )
        )
        return Ok(rid=req.rid)

    async def set_member_state(self, conn: ClientConnection, req: SetMemberState) -> Ok:
        member = self._member(conn)
        changed = False
        if req.hand_raised is not None and req.hand_raised != member.hand_raised:
            member.hand_raised = req.hand_raised
            changed = True
        if req.muted is not None and req.muted != member.muted:
            member.muted = req.muted
            changed = True
        if changed:
            room = self._room_of[member.user_id]
            room.version += 1
            self._changed(room)
        return Ok(rid=req.rid)

    async def chat(self, conn: ClientConnection, req: SendRoomChat) -> Ok:
        member = self._member(conn)
        if len(req.text.encode()) > MAX_ROOM_CHAT_BYTES:
            raise ServiceError(
                ErrorCode.TOO_LARGE,
                f"a chat line holds at most {MAX_ROOM_CHAT_BYTES} bytes",
            )
        room = self._room_of[member.user_id]
        room.chat_seq += 1
        self._broadcast(
            room,
            RoomChat(
                room_id=room.room_id,
                seq=room.chat_seq,
                sender=member.username,
                text=req.text,
                sent_ms=now_ms(),
            ),
        )
        return Ok(rid=req.rid)

    # -- tracks -----------------------------------------------------------------

    async def publish(
        self, conn: ClientConnection, req: PublishTrack
    ) -> TrackPublished:
        member = self._member(conn)
        if any(track.kind == req.kind for track in member.tracks.values()):
            raise ServiceError(
                ErrorCode.CONFLICT, f"you already publish a {req.kind} track"
            )
        if req.kind == "microphone":
            track = Track(self._new_track_id(), req.kind, "opus")
        else:
            if req.width <= 0 or req.height <= 0 or req.fps <= 0:
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT,
                    "a video track needs width, height and fps",
                )
            track = Track(
                self._new_track_id(), req.kind, "h264", req.width, req.height, req.fps
            )
        member.tracks[track.track_id] = track
        room = self._room_of[member.user_id]
        room.version += 1
        self._changed(room)
        return TrackPublished(
            rid=req.rid,
            track=RoomTrack(
                track_id=track.track_id,
                owner=member.username,
                kind=req.kind,
                codec=track.codec,
                width=track.width,
                height=track.height,
                fps=track.fps,
            ),
        )

    async def unpublish(self, conn: ClientConnection, req: UnpublishTrack) -> Ok:
        member = self._member(conn)
        if member.tracks.pop(req.track_id, None) is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "you publish no track with this id")
        room = self._room_of[member.user_id]
        room.version += 1
        self._changed(room)
        return Ok(rid=req.rid)

    def _new_track_id(self) -> int:
        if self._next_track_id > MAX_TRACK_ID:
            raise ServiceError(ErrorCode.BUSY, "this server ran out of track ids")
        track_id = self._next_track_id
        self._next_track_id += 1
        return track_id

    # -- helpers ----------------------------------------------------------------

    def _member(self, conn: ClientConnection) -> Member:
        member = self._members.get(conn)
        if member is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "you are not in a room")
        return member

    async def _display_name(self, user_id: int) -> str:
        def lookup() -> str:
            user = User.get_or_none(User.id == user_id)
            return "" if user is None else user.display_name

        return await self.app.storage.run(lookup)

    def _changed(self, room: Room, skip: Member | None = None) -> None:
        """Route the room's media anew and push its state to the members."""
        self.sfu.set_room(
            room, ((m.conn, m.tracks.keys()) for m in room.members.values())
        )
        event = RoomUpdated(room=room.snapshot())
        for member in room.members.values():
            if member is not skip:
                member.conn.push(event)

    @staticmethod
    def _broadcast(room: Room, event: Event) -> None:
        for member in room.members.values():
            member.conn.push(event)


def _account(conn: ClientConnection) -> Account:
    account = conn.account
    if account is None:
        raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "log in first")
    return account
