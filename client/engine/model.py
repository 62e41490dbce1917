"""What the engine tells the views: plain, immutable UI events and the view
models they carry. The engine's backend makes them, the channel carries them
up (:mod:`client.engine.messages`), the app (Tk thread) dispatches them by
type; nothing here knows Tk or asyncio.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Literal

from ..store import LocalMessage
from .audio_model import AudioActivity, InputLevel

__all__ = [
    "avatar_tint",
    "AvatarSpec",
    "ConnectionState",
    "ConversationUpdate",
    "FileOfferEntry",
    "FriendEntry",
    "ImageReady",
    "MeetingChanged",
    "MeetingChatLine",
    "MeetingLeft",
    "MeetingMember",
    "MeetingTile",
    "Notice",
    "PeerTyping",
    "Person",
    "ProfileUpdated",
    "RequestEntry",
    "Roster",
    "ServerIdentity",
    "SignedIn",
    "SignedOut",
    "TileStats",
    "TransferEntry",
    "TransfersChanged",
    "UiEvent",
    "coalescing_key",
    "human_size",
]

Presence = Literal["online", "away", "offline"]
NoticeLevel = Literal["info", "success", "warning", "danger"]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone as the views show them. ``avatar`` names the picture's version
    (its SHA-256, or ``icon-N`` for a built-in icon); see :class:`AvatarSpec`."""

    username: str
    display_name: str
    mood: str
    avatar: str

    @property
    def name(self) -> str:
        """The name to show: the display name, else the username."""
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class FriendEntry:
    """A friend in the drawer; ``last_seen_ms`` is Unix ms, ``unread`` a count.
    ``last_text`` is the newest message of the conversation (empty if none),
    sent at ``last_ms`` (Unix ms), by us if ``last_outgoing``."""

    person: Person
    presence: Presence
    last_seen_ms: int = 0
    unread: int = 0
    last_text: str = ""
    last_ms: int = 0
    last_outgoing: bool = False


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """A pending friend request; ``sent_ms`` is Unix ms."""

    person: Person
    note: str = ""
    sent_ms: int = 0


@dataclass(frozen=True, slots=True)
class AvatarSpec:
    """One rendering of an avatar: ``size`` pixels square, with a presence dot
    unless ``presence`` is None. Its :attr:`key` names the image on both sides."""

    username: str
    version: str
    size: int
    presence: Presence | None = None

    @classmethod
    def of(
        cls, person: Person, size: int, presence: Presence | None = None
    ) -> AvatarSpec:
        return cls(person.username, person.avatar, size, presence)

    @property
    def key(self) -> str:
        return (
            f"avatar/{self.username}/{self.version}/{self.size}/{self.presence or '-'}"
        )

    @classmethod
    def parse(cls, key: str) -> AvatarSpec:
        """The spec named by ``key``; raises ValueError for anything else."""
        kind, username, version, size, presence = key.split("/")
        if kind != "avatar" or presence not in ("online", "away", "offline", "-"):
            raise ValueError(f"not an avatar key: {key!r}")
        return cls(
            username,
            version,
            int(size),
            None if presence == "-" else presence,  # type: ignore[arg-type]
        )


def avatar_tint(username: str, icon: int, colors: int) -> int:
    """Which of ``colors`` colours a letter avatar gets: a stable hash of the
    username (the same on every machine and run) shifted by the chosen icon,
    so people who never chose one still differ."""
    return (zlib.crc32(username.lower().encode()) + icon) % colors


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """A server's address (``host:port``) and its certificate's SHA-256."""

    address: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class TransferEntry:
    """An upload (``direction`` ``up``) or download (``down``) as shown.

    ``state`` is ``active``, ``paused``, ``done``, ``failed`` or ``cancelled``;
    sizes are bytes, ``rate_bps`` bytes per second (0 when unknown), ``eta_s``
    seconds left. ``delivered``: the recipient downloaded our file.
    ``recent``: it ran or changed since the app started. ``checking``: an
    upload still hashing its file (``done``, the rate and the time left are
    the hashing's). ``file_id``: the server's id of the file, once known
    (empty before).
    """

    id: int
    direction: str
    peer: str
    name: str
    path: str
    size: int
    done: int
    state: str
    error: str = ""
    rate_bps: float = 0.0
    eta_s: float | None = None
    instant: bool = False
    delivered: bool = False
    recent: bool = True
    checking: bool = False
    file_id: str = ""

    @property
    def finished(self) -> bool:
        """Nothing more will happen to it (done or cancelled)."""
        return self.state in ("done", "cancelled")


@dataclass(frozen=True, slots=True)
class FileOfferEntry:
    """A file a friend sent us, ready to download; ``sent_ms`` is Unix ms."""

    file_id: str
    sender: str
    name: str
    size: int
    sent_ms: int = 0


@dataclass(frozen=True, slots=True)
class MeetingMember:
    """Someone in the meeting; ``muted`` is what they declare about their
    microphone, ``me`` marks ourselves."""

    username: str
    name: str
    host: bool = False
    hand_raised: bool = False
    muted: bool = False
    me: bool = False


@dataclass(frozen=True, slots=True)
class MeetingTile:
    """A video tile: ``key`` names its pictures' shared buffer
    (:mod:`client.engine.shared`); ``kind`` is ``camera`` or ``screen``."""

    key: str
    username: str
    name: str
    kind: str
    me: bool = False


# -- events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn:
    """We are signed in as ``me`` on ``server``."""

    me: Person
    server: str
    identity: ServerIdentity | None = None


@dataclass(frozen=True, slots=True)
class SignedOut:
    """The session ended: ``reason`` is ``logout``, ``signed_in_elsewhere``,
    ``password_changed``, ``token_invalid`` or ``connection_lost``."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ProfileUpdated:
    """Our own profile changed."""

    me: Person


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """The connection is up (``online``) or being re-established (``detail``)."""

    online: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Roster:
    """The whole friend list, as it is now (a newer one replaces an older one)."""

    friends: tuple[FriendEntry, ...] = ()
    incoming: tuple[RequestEntry, ...] = ()
    outgoing: tuple[RequestEntry, ...] = ()

    def friend(self, username: str) -> FriendEntry | None:
        for entry in self.friends:
            if entry.person.username == username:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class ImageReady:
    """The picture named ``key``, already drawn and sized: ``pixels`` in
    Pillow's raw layout of ``mode`` (``RGBA``), ``width`` x ``height``."""

    key: str
    mode: str
    width: int
    height: int
    pixels: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ConversationUpdate:
    """Messages of the conversation with ``peer`` to show or re-show (by ``id``).

    ``reset``: these replace what is shown (the conversation was opened).
    ``older``: a page from further back. ``has_more``: older ones exist.
    """

    peer: str
    messages: tuple[LocalMessage, ...]
    reset: bool = False
    older: bool = False
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class PeerTyping:
    """``peer`` started or stopped typing to us."""

    peer: str
    typing: bool


@dataclass(frozen=True, slots=True)
class TransfersChanged:
    """Every transfer worth showing (newest first) and the files waiting to be
    downloaded (a newer snapshot replaces an older one)."""

    transfers: tuple[TransferEntry, ...] = ()
    offers: tuple[FileOfferEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class MeetingChanged:
    """The meeting we are in, as it is now (a newer one replaces an older one).

    ``camera_on``, ``screen_on`` and ``microphone_on`` say what we send;
    ``audio_problem`` why sound is off (empty when it is on); ``room_id`` is
    the code others join with.
    """

    room_id: str
    host: str | None
    locked: bool
    has_password: bool
    members: tuple[MeetingMember, ...]
    tiles: tuple[MeetingTile, ...]
    camera_on: bool = False
    screen_on: bool = False
    microphone_on: bool = False
    audio_problem: str = ""

    @property
    def me(self) -> MeetingMember | None:
        return next((m for m in self.members if m.me), None)


@dataclass(frozen=True, slots=True)
class MeetingChatLine:
    """A line of the meeting's chat; ``sent_ms`` is Unix ms."""

    sender: str
    name: str
    text: str
    sent_ms: int
    me: bool = False


@dataclass(frozen=True, slots=True)
class MeetingLeft:
    """We are out of the meeting: ``reason`` is ``left``, ``ended``,
    ``removed``, ``connection_lost`` or another the server gives."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class TileStats:
    """One line of statistics per tile key (resolution, fps, bitrate, loss,
    rtt), refreshed every second."""

    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell the user in a toast; clicking it opens the chat with
    ``peer``, or joins the meeting ``room_id``."""

    title: str
    text: str
    level: NoticeLevel = "info"
    peer: str | None = None
    room_id: str | None = None


UiEvent = (
    SignedIn
    | SignedOut
    | ProfileUpdated
    | ConnectionState
    | Roster
    | ImageReady
    | ConversationUpdate
    | PeerTyping
    | TransfersChanged
    | MeetingChanged
    | MeetingChatLine
    | MeetingLeft
    | TileStats
    | Notice
    | AudioActivity
    | InputLevel
)


def coalescing_key(event: object) -> object | None:
    """Events with equal keys are snapshots: only the newest waiting one matters."""
    snapshots = (
        Roster,
        ConnectionState,
        ProfileUpdated,
        TransfersChanged,
        MeetingChanged,
        TileStats,
        AudioActivity,
        InputLevel,
    )
    if isinstance(event, snapshots):
        return type(event)
    if isinstance(event, PeerTyping):
        return (PeerTyping, event.peer)
    return None


def human_size(size: float) -> str:
    """``size`` bytes for people: ``512 B``, ``1.5 MB``, ``2.0 GB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
