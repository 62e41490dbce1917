"""Friends, presence and 1:1 chat."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .accounts import Profile, Username
from .base import Event, Reply, Request

__all__ = [
    "AckMessages",
    "BlockUser",
    "CancelFriendRequest",
    "ChatMessage",
    "Delivered",
    "Friend",
    "FriendAccepted",
    "FriendList",
    "FriendRemoved",
    "FriendRequestCancelled",
    "FriendRequestDeclined",
    "FriendRequestInfo",
    "FriendRequested",
    "ListFriends",
    "MarkRead",
    "MessageAccepted",
    "PresenceChanged",
    "ProfileChanged",
    "ReadReceipt",
    "RemoveFriend",
    "RequestFriend",
    "RespondFriend",
    "SendMessage",
    "SetPresence",
    "SyncDone",
    "SyncMessages",
    "Typing",
    "TypingChanged",
    "UnblockUser",
]

MAX_MESSAGE_BYTES = 8 * 1024
"""Largest chat message text, in bytes of UTF-8."""

Presence = Literal["online", "away", "offline"]
Note = Annotated[str, msgspec.Meta(max_length=280)]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class Friend(msgspec.Struct, kw_only=True):
    """A friend as the friend list shows it. ``last_seen_ms`` is Unix ms (0: never)."""

    profile: Profile
    presence: Presence
    last_seen_ms: int = 0
    since_ms: int = 0


class FriendRequestInfo(msgspec.Struct, kw_only=True):
    """A pending friend request, incoming or outgoing; ``sent_ms`` is Unix ms."""

    profile: Profile
    note: str = ""
    sent_ms: int = 0


# -- friends ------------------------------------------------------------------


class RequestFriend(Request):
    """Ask ``username`` to be friends, with an optional ``note``. Works while the
    other side is offline (they are told when they next log in). If they had
    already asked us, this accepts their request instead."""

    username: Username
    note: Note = ""


class RespondFriend(Request):
    """Accept (``accept`` true) or decline a friend request from ``username``."""

    username: Username
    accept: bool


class CancelFriendRequest(Request):
    """Withdraw our pending request to ``username``."""

    username: Username


class RemoveFriend(Request):
    """End the friendship with ``username``; both sides are told."""

    username: Username


class BlockUser(Request):
    """Block ``username``: ends any friendship or request, refuses their future
    requests and messages, and hides our presence from them."""

    username: Username


class UnblockUser(Request):
    """Lift a block on ``username``."""

    username: Username


class ListFriends(Request):
    """The friend list with profiles and presence, and pending requests."""


class FriendList(Reply):
    """Answer to ``ListFriends``; ``blocked`` lists usernames we block."""

    friends: list[Friend]
    incoming: list[FriendRequestInfo]
    outgoing: list[FriendRequestInfo]
    blocked: list[str]


class FriendRequested(Event):
    """Someone asked to be friends (delivered at once, or at the next login)."""

    request: FriendRequestInfo


class FriendAccepted(Event):
    """A friendship began: ``friend`` accepted our request or we accepted theirs."""

    friend: Friend


class FriendRequestDeclined(Event):
    """``username`` declined our friend request."""

    username: str


class FriendRequestCancelled(Event):
    """``username`` withdrew their friend request to us."""

    username: str


class FriendRemoved(Event):
    """The friendship with ``username`` ended (removed or blocked by either side)."""

    username: str


# -- presence -----------------------------------------------------------------


class SetPresence(Request):
    """Show ourselves as ``online`` or ``away`` to our friends."""

    status: Literal["online", "away"]


class PresenceChanged(Event):
    """A friend's presence changed; ``last_seen_ms`` is Unix ms."""

    username: str
    presence: Presence
    last_seen_ms: int = 0


class ProfileChanged(Event):
    """A friend changed their display name, mood or avatar: their whole profile
    as it is now (a new ``avatar_sha256`` means a new picture to fetch)."""

    profile: Profile


# -- chat -----------------------------------------------------------------------


class SendMessage(Request):
    """Send ``text`` (UTF-8, at most 8 KiB) to the friend ``to``.

    ``client_id`` is chosen by the sender and unique among its messages: sending
    the same ``client_id`` again (a retry after a lost reply) never creates a
    second message; the reply then repeats the first one's ``seq``.
    """

    to: Username
    client_id: ClientId
    text: Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_BYTES)]


class MessageAccepted(Reply):
    """The message is committed to storage. ``seq`` orders it within the
    conversation (both directions share one sequence); ``sent_ms`` is Unix ms.
    ``duplicate`` is true when ``client_id`` had been accepted before."""

    client_id: str
    seq: int
    sent_ms: int
    duplicate: bool = False


class ChatMessage(Event):
    """A message for us from ``sender``. Acknowledge it with ``AckMessages``."""

    sender: str
    seq: int
    client_id: str
    text: str
    sent_ms: int


class AckMessages(Request):
    """We have stored every message from ``peer`` up to ``up_to_seq``."""

    peer: Username
    up_to_seq: Seq


class Delivered(Event):
    """``peer`` has stored our messages up to ``up_to_seq``."""

    peer: str
    up_to_seq: int


class MarkRead(Request):
    """We have read the messages from ``peer`` up to ``up_to_seq``."""

    peer: Username
    up_to_seq: Seq


class ReadReceipt(Event):
    """``peer`` has read our messages up to ``up_to_seq``."""

    peer: str
    up_to_seq: int


class Typing(Request):
    """Tell ``to`` that we are (or stopped) typing. Not stored."""

    to: Username
    typing: bool = True


class TypingChanged(Event):
    """``username`` started or stopped typing to us."""

    username: str
    typing: bool


class SyncMessages(Request):
    """Ask for every message to us that we have not seen, after a (re)connect.

    ``seen`` maps each peer to the highest ``seq`` we hold from them; peers left
    out are treated as 0. The server answers with the missing ``ChatMessage``
    events in order, the current ``Delivered`` and ``ReadReceipt`` positions of
    our own messages, then ``SyncDone``. Until a connection has synced, the
    server does not push live messages to it, so messages always arrive in order.
    """

    seen: dict[str, Seq] = {}


class SyncDone(Reply):
    """Every missing message was sent before this reply; ``count`` of them."""

    count: int
