"""Meetings: rooms, their members and hosts, in-room chat, and published tracks.

A room lives on one server node and only in memory. Its id is chosen by the
server: ten characters of :data:`ROOM_ID_ALPHABET`, shown grouped as
``abc-def-ghjk``; :func:`parse_room_id` accepts what people type (any case,
with or without dashes and spaces) and :func:`format_room_id` gives the form
the wire carries. Media itself travels in QUIC datagrams (``docs/media.md``);
these messages only set up who may send and receive it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .accounts import Username
from .base import Event, Reply, Request

__all__ = [
    "MAX_ROOM_CHAT_BYTES",
    "ROOM_ID_ALPHABET",
    "ROOM_ID_LENGTH",
    "AskToMute",
    "AudioLossReported",
    "CreateRoom",
    "DeclineInvitation",
    "EndRoom",
    "GetRoom",
    "InvitationDeclined",
    "InviteToRoom",
    "JoinRoom",
    "LeaveRoom",
    "LockRoom",
    "MuteRequested",
    "PublishTrack",
    "RemoveMember",
    "ReportAudioLoss",
    "RoomChat",
    "RoomElsewhere",
    "RoomInfo",
    "RoomInvitation",
    "RoomJoined",
    "RoomLeft",
    "RoomMember",
    "RoomState",
    "RoomTrack",
    "RoomUpdated",
    "SendRoomChat",
    "SetMemberState",
    "TrackKind",
    "TrackPublished",
    "TransferHost",
    "UnpublishTrack",
    "ViewTrack",
    "format_room_id",
    "parse_room_id",
]

ROOM_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""31 symbols people cannot confuse: no ``0``/``o``, ``1``/``l``/``i``."""

ROOM_ID_LENGTH = 10
"""Symbols in a room id: 31**10, about 2**49.5 ids."""

MAX_ROOM_CHAT_BYTES = 4096
"""Largest in-room chat line, in bytes of UTF-8."""

_GROUPS = (3, 3, 4)

TrackKind = Literal["camera", "screen", "microphone"]
RoomIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
RoomPassword = Annotated[str, msgspec.Meta(max_length=128)]
TrackId = Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]
Dimension = Annotated[int, msgspec.Meta(ge=0, le=8192)]
FrameRate = Annotated[float, msgspec.Meta(ge=0, le=240)]
LostFraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


def parse_room_id(text: str) -> str | None:
    """The canonical (grouped) form of a typed room id, or None if it is not one.

    Case, dashes and spaces are ignored: ``"ABC DEF GHJK"`` and ``"abcdefghjk"``
    both give ``"abc-def-ghjk"``.
    """
    compact = "".join(text.split()).replace("-", "").lower()
    if len(compact) != ROOM_ID_LENGTH or any(
        ch not in ROOM_ID_ALPHABET for ch in compact
    ):
        return None
    return format_room_id(compact)


def format_room_id(compact: str) -> str:
    """Group ten room-id symbols as ``abc-def-ghjk``."""
    parts = []
    start = 0
    for size in _GROUPS:
        parts.append(compact[start : start + size])
        start += size
    return "-".join(parts)


# -- records --------------------------------------------------------------------


class RoomMember(msgspec.Struct, kw_only=True):
    """One member of a room as every member sees it.

    ``muted`` is what the member declares about its microphone; ``joined_ms`` is
    Unix milliseconds.
    """

    username: str
    display_name: str
    host: bool = False
    hand_raised: bool = False
    muted: bool = False
    joined_ms: int = 0


class RoomTrack(msgspec.Struct, kw_only=True):
    """A published track: its media arrives in datagrams carrying ``track_id``.

    ``codec`` is ``h264`` for video and ``opus`` for audio. ``width`` and
    ``height`` (pixels) and ``fps`` (frames per second) are what the publisher
    announced for video, 0 for audio; the decoded picture is authoritative.
    """

    track_id: int
    owner: str
    kind: TrackKind
    codec: str
    width: int = 0
    height: int = 0
    fps: float = 0.0


class RoomState(msgspec.Struct, kw_only=True):
    """Everything a member knows about its room.

    ``version`` grows with every change, so a client can ignore a stale copy.
    ``host`` is the host's username (null only in a room that has no members).
    Members are listed in the order they joined. ``max_datagram`` is the
    largest media datagram, in bytes with its header, that every member's
    connection carries now (1,170 in QUIC packets of 1,200 bytes, more once
    every member's path MTU search found larger packets get through):
    publishers fragment video to fit it, and the SFU forwards nothing larger
    to a member whose connection does not carry it.
    """

    room_id: str
    version: int
    host: str | None
    locked: bool
    has_password: bool
    max_members: int
    members: list[RoomMember]
    tracks: list[RoomTrack]
    max_datagram: int = 1170


# -- rooms ----------------------------------------------------------------------


class CreateRoom(Request):
    """Create a room and join it as its host. The server chooses the id.

    ``password``, when set, must be given by everyone who joins without an
    invitation. ``max_members`` lowers the server's room size limit for this
    room. Joining a room leaves the room one was in.
    """

    password: RoomPassword | None = None
    max_members: Annotated[int, msgspec.Meta(ge=2, le=1000)] | None = None


class JoinRoom(Request):
    """Join the room ``room_id`` (as typed: case, dashes and spaces are ignored).

    An invitation admits without the password; a locked room admits only those
    the host invited. Failed attempts are throttled per account and per address
    (``203 LOGIN_THROTTLED``), which makes guessing ids impractical. Joining the
    room one is already in answers its current state.
    """

    room_id: RoomIdText
    password: RoomPassword | None = None


class RoomJoined(Reply):
    """The caller is a member of ``room``; ``RoomUpdated`` events follow changes."""

    room: RoomState


class LeaveRoom(Request):
    """Leave the room; one's tracks end. A room left empty waits a while for
    someone to come back, then closes."""


class GetRoom(Request):
    """The current state of the room one is in."""


class RoomInfo(Reply):
    """Answer to ``GetRoom``."""

    room: RoomState


class EndRoom(Request):
    """Host only: end the meeting for everyone and close the room."""


class LockRoom(Request):
    """Host only: refuse (``locked``) or admit again people joining by id."""

    locked: bool = True


class RemoveMember(Request):
    """Host only: remove ``username`` from the room. They may not join it again
    unless the host invites them."""

    username: Username


class AskToMute(Request):
    """Host only: ask ``username`` to mute their microphone (``MuteRequested``)."""

    username: Username


class ReportAudioLoss(Request):
    """A listener's share (0..1) of the microphone track ``track_id``'s
    frames that did not arrive in time to play in its last report period
    (about 2 s), counted before FEC recovered any. The server relays it to
    the track's publisher as ``AudioLossReported``; only about another
    member's microphone track in the same room."""

    track_id: TrackId
    lost_fraction: LostFraction


class TransferHost(Request):
    """Host only: make the member ``username`` the host."""

    username: Username


class InviteToRoom(Request):
    """Invite the friend ``username``, who must be online, to one's room.

    They get ``RoomInvitation``; joining the room within ``expires_ms`` accepts
    it, without the password.
    """

    username: Username


class DeclineInvitation(Request):
    """Say no to the pending invitation to ``room_id``: it is dropped and the
    one who invited, if online, gets ``InvitationDeclined``."""

    room_id: RoomIdText


class SetMemberState(Request):
    """Raise or lower one's hand, or declare one's microphone muted; fields left
    null keep their value."""

    hand_raised: bool | None = None
    muted: bool | None = None


class SendRoomChat(Request):
    """Say ``text`` (at most 4 KiB of UTF-8) to every member, oneself included."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ROOM_CHAT_BYTES)]


class PublishTrack(Request):
    """Start sending a track. The server assigns its id, bound to this
    connection, and tells every member. One track of each kind per member;
    ``width``, ``height`` and ``fps`` describe video (0 for a microphone)."""

    kind: TrackKind
    width: Dimension = 0
    height: Dimension = 0
    fps: FrameRate = 0.0


class TrackPublished(Reply):
    """The track is announced; datagrams with ``track.track_id`` are forwarded."""

    track: RoomTrack


class UnpublishTrack(Request):
    """Stop sending the track ``track_id``; every member is told."""

    track_id: TrackId


class ViewTrack(Request):
    """Show another member's video track ``track_id`` at most ``width`` x
    ``height`` pixels (a tile's size; 0 x 0: no limit, the default). The
    server forwards no simulcast layer larger than that needs: the smallest
    at least as large, or the top when none is (``docs/media.md`` section
    7). Sent again when the tile's size changes; both sizes at least 1, or
    both 0."""

    track_id: TrackId
    width: Dimension
    height: Dimension


# -- events ---------------------------------------------------------------------


class RoomUpdated(Event):
    """The room changed (members, host, lock, hands, tracks): its new state."""

    room: RoomState


class RoomLeft(Event):
    """This connection is no longer a member of ``room_id``.

    ``reason``: ``left`` (asked to, or joined another room), ``removed`` (by the
    host), ``ended`` (the host ended the meeting). ``message`` is for people.
    """

    room_id: str
    reason: str
    message: str


class RoomInvitation(Event):
    """``inviter`` invites us to ``room_id``; ``JoinRoom`` before ``expires_ms``
    (Unix milliseconds) accepts."""

    room_id: str
    inviter: str
    expires_ms: int


class InvitationDeclined(Event):
    """``username`` said no to our invitation to ``room_id``."""

    room_id: str
    username: str


class RoomElsewhere(Event):
    """``room_id`` is hosted by the cluster node at ``node`` (``host:port``): sent
    just before a ``ROOM_ELSEWHERE`` error; resume the session there to join."""

    room_id: str
    node: str


class RoomChat(Event):
    """A chat line said in the room. ``seq`` counts the room's lines from 1;
    ``sent_ms`` is the server's Unix milliseconds."""

    room_id: str
    seq: int
    sender: str
    text: str
    sent_ms: int


class AudioLossReported(Event):
    """The listener ``by`` lost ``lost_fraction`` (0..1) of our microphone
    track ``track_id``'s frames in its last period: our encoder sets its
    in-band FEC from the worst listener."""

    room_id: str
    track_id: int
    by: str
    lost_fraction: float


class MuteRequested(Event):
    """The host ``by`` asks us to mute our microphone."""

    room_id: str
    by: str
