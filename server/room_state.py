"""What the server holds about one room: members, host, lock, invitations, tracks.

Plain in-memory state with no I/O; :class:`server.rooms.RoomService` changes it
in response to requests and tells members and the SFU. Times are seconds on the
event loop's clock unless a name says ``_ms`` (Unix milliseconds).

A :class:`RoomRecord` is what a cluster keeps of a room so that another node
can take the meeting over when the room's node dies: who owns and hosts it, its
lock, password digest and removals, and who sat in it. Invitations, hands and
tracks are not in it: members publish their tracks again when they rejoin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from codec.errors import ErrorCode
from codec.messages import RoomMember, RoomState, RoomTrack
from codec.messages.rooms import ROOM_ID_ALPHABET, ROOM_ID_LENGTH, format_room_id

from .errors import ServiceError
from .sfu import BASE_FORWARDED_DATAGRAM

if TYPE_CHECKING:
    from .connection import Account, ClientConnection

__all__ = [
    "Invitation",
    "Member",
    "Room",
    "RoomRecord",
    "Track",
    "account_of",
    "new_room_id",
]


def new_room_id() -> str:
    """A fresh random room id in its grouped form (about 49.5 bits from
    :mod:`secrets`); the caller checks it is not in use."""
    return format_room_id(
        "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(ROOM_ID_LENGTH))
    )


@dataclass(slots=True)
class Track:
    """A published track, bound to the connection of the member who owns it."""

    track_id: int
    kind: str
    codec: str
    width: int = 0
    height: int = 0
    fps: float = 0.0


@dataclass(eq=False, slots=True)
class Member:
    """A user in a room, through one connection (the session's live one)."""

    user_id: int
    username: str
    display_name: str
    session_id: int
    conn: ClientConnection
    joined_ms: int
    hand_raised: bool = False
    muted: bool = False
    tracks: dict[int, Track] = field(default_factory=dict)


@dataclass(slots=True)
class Invitation:
    """An invitation to one user from ``inviter_id``; ``by_host`` ones also pass
    a lock or a removal."""

    expires_at: float
    by_host: bool
    inviter_id: int


class RoomRecord(msgspec.Struct, frozen=True):
    """A room as another node needs it to go on with the meeting."""

    owner_id: int
    max_members: int
    salt: bytes
    password_digest: bytes | None
    host_id: int | None
    locked: bool
    banned: list[int]
    seated: list[int]
    """Members when the record was made, in join order: they get their seat
    back without the password, the lock or an invitation."""
    version: int
    chat_seq: int


encode_record = msgspec.msgpack.Encoder().encode
decode_record = msgspec.msgpack.Decoder(RoomRecord).decode


class Room:
    """One meeting room.

    The password is kept only as a salted SHA-256 and compared in constant
    time. ``members`` keeps join order, which decides who becomes host when the
    host leaves.
    """

    def __init__(
        self,
        room_id: str,
        owner_id: int,
        max_members: int,
        password: str | None,
    ) -> None:
        self.room_id = room_id
        self.owner_id = owner_id
        self.max_members = max_members
        self.members: dict[int, Member] = {}
        self.host_id: int | None = None
        self.locked = False
        self.banned: set[int] = set()
        self.invitations: dict[int, Invitation] = {}
        self.version = 0
        self.chat_seq = 0
        self._salt = secrets.token_bytes(16)
        self._password_digest = None if password is None else self._digest(password)
        self.returning: set[int] = set()
        """Members of the room before it moved here who have not rejoined yet."""
        self.returning_host: int | None = None
        """The host before the room moved here, until they rejoin: they are
        host again then (someone else holds the role meanwhile)."""

    def record(self) -> RoomRecord:
        """What another node needs to take this room over."""
        return RoomRecord(
            owner_id=self.owner_id,
            max_members=self.max_members,
            salt=self._salt,
            password_digest=self._password_digest,
            host_id=(
                self.host_id if self.returning_host is None else self.returning_host
            ),
            locked=self.locked,
            banned=sorted(self.banned),
            seated=[*self.members, *sorted(self.returning - self.members.keys())],
            version=self.version,
            chat_seq=self.chat_seq,
        )

    @classmethod
    def from_record(cls, room_id: str, record: RoomRecord) -> Room:
        """The room of ``record``, empty, waiting for its members to rejoin; its
        version goes on past the record's so members take its states as newer."""
        room = cls(room_id, record.owner_id, record.max_members, None)
        room._salt = record.salt
        room._password_digest = record.password_digest
        room.locked = record.locked
        room.banned = set(record.banned)
        room.returning = set(record.seated)
        room.returning_host = record.host_id
        room.version = record.version + 1
        room.chat_seq = record.chat_seq
        return room

    @property
    def has_password(self) -> bool:
        return self._password_digest is not None

    def _digest(self, password: str) -> bytes:
        return hashlib.sha256(self._salt + password.encode()).digest()

    def password_matches(self, password: str | None) -> bool:
        """Whether ``password`` opens this room (any does if it has none)."""
        if self._password_digest is None:
            return True
        if password is None:
            return False
        return hmac.compare_digest(self._digest(password), self._password_digest)

    def invitation(self, user_id: int, now: float) -> Invitation | None:
        """The user's unexpired invitation, if any."""
        invitation = self.invitations.get(user_id)
        if invitation is not None and invitation.expires_at <= now:
            del self.invitations[user_id]
            return None
        return invitation

    def prune_invitations(self, now: float) -> None:
        """Forget expired invitations."""
        for user_id in [u for u, i in self.invitations.items() if i.expires_at <= now]:
            del self.invitations[user_id]

    def member_named(self, username: str) -> Member | None:
        name = username.lower()
        for member in self.members.values():
            if member.username == name:
                return member
        return None

    @property
    def host(self) -> Member | None:
        return None if self.host_id is None else self.members.get(self.host_id)

    def add(self, member: Member) -> None:
        """Admit ``member``; the first member of an empty room becomes host,
        and a host from before the room moved takes the role back."""
        self.members[member.user_id] = member
        self.returning.discard(member.user_id)
        if member.user_id == self.returning_host:
            self.returning_host = None
            self.host_id = member.user_id
        elif self.host_id not in self.members:
            self.host_id = member.user_id
        self.version += 1

    def transfer_host(self, user_id: int) -> None:
        """Make member ``user_id`` the host (a returning host no longer takes
        the role back: the room's host chose another)."""
        self.host_id = user_id
        self.returning_host = None
        self.version += 1

    def remove(self, member: Member) -> None:
        """Take ``member`` out; the host role passes to the longest present."""
        del self.members[member.user_id]
        if self.host_id == member.user_id:
            self.host_id = next(iter(self.members), None)
        self.version += 1

    def video_track_ids(self) -> list[int]:
        return [
            track.track_id
            for member in self.members.values()
            for track in member.tracks.values()
            if track.codec == "h264"
        ]

    def snapshot(self) -> RoomState:
        """The state every member is sent."""
        host = self.host
        return RoomState(
            room_id=self.room_id,
            version=self.version,
            host=host.username if host is not None else None,
            locked=self.locked,
            has_password=self.has_password,
            max_members=self.max_members,
            members=[
                RoomMember(
                    username=m.username,
                    display_name=m.display_name,
                    host=m.user_id == self.host_id,
                    hand_raised=m.hand_raised,
                    muted=m.muted,
                    joined_ms=m.joined_ms,
                )
                for m in self.members.values()
            ],
            tracks=[
                RoomTrack(
                    track_id=t.track_id,
                    owner=m.username,
                    kind=t.kind,  # type: ignore[arg-type]
                    codec=t.codec,
                    width=t.width,
                    height=t.height,
                    fps=t.fps,
                )
                for m in self.members.values()
                for t in m.tracks.values()
            ],
            max_datagram=min(
                (m.conn.max_media_datagram for m in self.members.values()),
                default=BASE_FORWARDED_DATAGRAM,
            ),
        )


def account_of(conn: ClientConnection) -> Account:
    """The account a request comes from (handlers run only for logged-in
    connections; a session that ended meanwhile is refused)."""
    account = conn.account
    if account is None:
        raise ServiceError(ErrorCode.NOT_AUTHENTICATED, "log in first")
    return account
