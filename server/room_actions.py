"""What members and hosts do inside a room: host powers, invitations, chat,
raised hands, and publishing tracks. Membership itself (joining, leaving, the
SFU's routes) is :class:`server.rooms.RoomService`'s."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from codec.errors import ErrorCode
from codec.messages import (
    AskToMute,
    AudioLossReported,
    DeclineInvitation,
    InvitationDeclined,
    InviteToRoom,
    LockRoom,
    MuteRequested,
    Ok,
    PublishTrack,
    RemoveMember,
    ReportAudioLoss,
    RoomChat,
    RoomInvitation,
    RoomTrack,
    SendRoomChat,
    SetMemberState,
    TrackPublished,
    TransferHost,
    UnpublishTrack,
    ViewTrack,
)
from codec.messages.rooms import MAX_ROOM_CHAT_BYTES, parse_room_id

from .errors import ServiceError
from .room_state import Invitation, Member, Room, Track, account_of
from .storage.models import Friendship, User

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .rooms import RoomService
    from .router import Router

__all__ = ["RoomActions"]

INVITATION_TTL = 300.0
"""Seconds an invitation stays valid."""
MAX_INVITATIONS = 64
"""Pending invitations one room may hold."""
MAX_TRACK_ID = 2**32 - 1


class RoomActions:
    """Handles the in-room requests of :mod:`codec.messages.rooms`."""

    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        # Track ids start at a random point of the lower half of their range,
        # not at 1: after a failover or a restart the tracks published again
        # would otherwise get the ids the old node gave out, and a member
        # whose room state never showed the old track gone would take the new
        # stream for the old one (whose frame numbers it is far past).
        self._next_track_id = secrets.randbelow(MAX_TRACK_ID // 2) + 1

    def register_handlers(self, router: Router) -> None:
        router.handle(LockRoom, self.lock)
        router.handle(RemoveMember, self.remove_member)
        router.handle(AskToMute, self.ask_to_mute)
        router.handle(TransferHost, self.transfer_host)
        router.handle(InviteToRoom, self.invite)
        router.handle(DeclineInvitation, self.decline)
        router.handle(SetMemberState, self.set_member_state)
        router.handle(SendRoomChat, self.chat)
        router.handle(PublishTrack, self.publish)
        router.handle(UnpublishTrack, self.unpublish)
        router.handle(ReportAudioLoss, self.report_audio_loss)
        router.handle(ViewTrack, self.view_track)

    # -- host powers ------------------------------------------------------------

    async def lock(self, conn: ClientConnection, req: LockRoom) -> Ok:
        room = self.rooms.hosted_room(conn)
        if room.locked != req.locked:
            room.locked = req.locked
            room.version += 1
            self.rooms.changed(room)
        return Ok(rid=req.rid)

    async def remove_member(self, conn: ClientConnection, req: RemoveMember) -> Ok:
        room = self.rooms.hosted_room(conn)
        target = self._target(room, conn, req.username)
        room.banned.add(target.user_id)
        room.invitations.pop(target.user_id, None)
        self.rooms.remove(target, "removed", "the host removed you from the meeting")
        return Ok(rid=req.rid)

    async def ask_to_mute(self, conn: ClientConnection, req: AskToMute) -> Ok:
        room = self.rooms.hosted_room(conn)
        target = self._target(room, conn, req.username)
        target.conn.push(
            MuteRequested(room_id=room.room_id, by=account_of(conn).username)
        )
        return Ok(rid=req.rid)

    async def transfer_host(self, conn: ClientConnection, req: TransferHost) -> Ok:
        room = self.rooms.hosted_room(conn)
        target = self._target(room, conn, req.username)
        room.transfer_host(target.user_id)
        self.rooms.changed(room)
        return Ok(rid=req.rid)

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
        member = self.rooms.member(conn)
        room = self.rooms.room_of(member)
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

        found = await self.rooms.ctx.storage.run(lookup)
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no user named {name}")
        user_id, friends = found
        if not friends:
            raise ServiceError(ErrorCode.FORBIDDEN, "you can invite only your friends")
        if user_id in room.members:
            raise ServiceError(ErrorCode.CONFLICT, f"{name} is already in the room")
        target = self.rooms.ctx.presence.connection(user_id)
        if target is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"{name} is not online")
        if member.user_id not in room.members:
            raise ServiceError(ErrorCode.NOT_FOUND, "you left the room")
        now = self.rooms.now()
        room.prune_invitations(now)
        if len(room.invitations) >= MAX_INVITATIONS and user_id not in room.invitations:
            raise ServiceError(ErrorCode.QUOTA_EXCEEDED, "too many pending invitations")
        room.invitations[user_id] = Invitation(
            expires_at=now + INVITATION_TTL,
            by_host=room.host_id == member.user_id,
            inviter_id=member.user_id,
        )
        target.push(
            RoomInvitation(
                room_id=room.room_id,
                inviter=member.username,
                expires_ms=self.rooms.ctx.clock.wall_ms() + int(INVITATION_TTL * 1000),
            )
        )
        return Ok(rid=req.rid)

    async def decline(self, conn: ClientConnection, req: DeclineInvitation) -> Ok:
        account = account_of(conn)
        room_id = parse_room_id(req.room_id)
        room = self.rooms.rooms.get(room_id) if room_id is not None else None
        invitation = (
            room.invitation(account.user_id, self.rooms.now())
            if room is not None
            else None
        )
        if room is None or invitation is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, "no pending invitation to that meeting"
            )
        del room.invitations[account.user_id]
        inviter = self.rooms.ctx.presence.connection(invitation.inviter_id)
        if inviter is not None:
            inviter.push(
                InvitationDeclined(room_id=room.room_id, username=account.username)
            )
        return Ok(rid=req.rid)

    async def set_member_state(self, conn: ClientConnection, req: SetMemberState) -> Ok:
        member = self.rooms.member(conn)
        changed = False
        if req.hand_raised is not None and req.hand_raised != member.hand_raised:
            member.hand_raised = req.hand_raised
            changed = True
        if req.muted is not None and req.muted != member.muted:
            member.muted = req.muted
            changed = True
        if changed:
            room = self.rooms.room_of(member)
            room.version += 1
            self.rooms.changed(room)
        return Ok(rid=req.rid)

    async def chat(self, conn: ClientConnection, req: SendRoomChat) -> Ok:
        member = self.rooms.member(conn)
        if len(req.text.encode()) > MAX_ROOM_CHAT_BYTES:
            raise ServiceError(
                ErrorCode.TOO_LARGE,
                f"a chat line holds at most {MAX_ROOM_CHAT_BYTES} bytes",
            )
        room = self.rooms.room_of(member)
        room.chat_seq += 1
        self.rooms.broadcast(
            room,
            RoomChat(
                room_id=room.room_id,
                seq=room.chat_seq,
                sender=member.username,
                text=req.text,
                sent_ms=self.rooms.ctx.clock.wall_ms(),
            ),
        )
        return Ok(rid=req.rid)

    # -- tracks -----------------------------------------------------------------

    async def publish(
        self, conn: ClientConnection, req: PublishTrack
    ) -> TrackPublished:
        member = self.rooms.member(conn)
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
        room = self.rooms.room_of(member)
        room.version += 1
        self.rooms.changed(room)
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

    async def report_audio_loss(
        self, conn: ClientConnection, req: ReportAudioLoss
    ) -> Ok:
        """Relay a listener's loss to the microphone track's publisher alone."""
        member = self.rooms.member(conn)
        room = self.rooms.room_of(member)
        owner = next(
            (m for m in room.members.values() if req.track_id in m.tracks), None
        )
        if owner is None or owner.tracks[req.track_id].kind != "microphone":
            raise ServiceError(
                ErrorCode.NOT_FOUND, "no microphone track with this id in your room"
            )
        if owner is member:
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT, "a loss report is about another's track"
            )
        owner.conn.push(
            AudioLossReported(
                room_id=room.room_id,
                track_id=req.track_id,
                by=member.username,
                lost_fraction=req.lost_fraction,
            )
        )
        return Ok(rid=req.rid)

    async def view_track(self, conn: ClientConnection, req: ViewTrack) -> Ok:
        """The largest size the member shows another's video track at: the
        SFU forwards it no larger simulcast layer than that needs."""
        if (req.width == 0) != (req.height == 0):
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT,
                "a view is width x height, both at least 1 (or both 0: no limit)",
            )
        member = self.rooms.member(conn)
        room = self.rooms.room_of(member)
        owner = next(
            (m for m in room.members.values() if req.track_id in m.tracks), None
        )
        if owner is None or owner.tracks[req.track_id].kind == "microphone":
            raise ServiceError(
                ErrorCode.NOT_FOUND, "no video track with this id in your room"
            )
        if owner is member:
            raise ServiceError(
                ErrorCode.INVALID_ARGUMENT, "a view is of another's track"
            )
        self.rooms.sfu.set_view(conn, req.track_id, req.width, req.height)
        return Ok(rid=req.rid)

    async def unpublish(self, conn: ClientConnection, req: UnpublishTrack) -> Ok:
        member = self.rooms.member(conn)
        if member.tracks.pop(req.track_id, None) is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "you publish no track with this id")
        room = self.rooms.room_of(member)
        room.version += 1
        self.rooms.changed(room)
        return Ok(rid=req.rid)

    def _new_track_id(self) -> int:
        if self._next_track_id > MAX_TRACK_ID:
            raise ServiceError(ErrorCode.BUSY, "this server ran out of track ids")
        track_id = self._next_track_id
        self._next_track_id += 1
        return track_id
