"""The channel's messages: commands down to the engine, replies and UI events
up to the window.

Every frame on the channel is one msgpack map (see :mod:`client.engine.channel`
for the framing). Down: a :class:`Request` carrying one command, a tagged
Struct per thing the UI can ask (its fields are the command's arguments).
Up: exactly one :class:`Reply` or :class:`Failure` per request (same ``rid``),
and :class:`EventMessage` frames carrying the UI events of
:mod:`client.engine.model`. A reply's value is decoded with the command's
``result`` type, an event's body with the type its ``kind`` names.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..store import LocalMessage
from ..transfers import Transfer
from .audio_model import AudioActivity, AudioDeviceList, InputLevel
from .model import (
    ConnectionState,
    ConversationUpdate,
    ImageReady,
    MeetingChanged,
    MeetingChatLine,
    MeetingLeft,
    Notice,
    PeerTyping,
    Person,
    ProfileUpdated,
    Roster,
    ServerIdentity,
    SignedIn,
    SignedOut,
    TileStats,
    TransfersChanged,
)
from .video_model import VideoDeviceList

__all__ = [
    "COMMANDS",
    "EVENT_TYPES",
    "Command",
    "EventMessage",
    "Failure",
    "Reply",
    "Request",
    "Up",
]


class Command(msgspec.Struct, frozen=True, tag_field="name"):
    """Base of the commands; ``result`` is the type of a successful reply's
    value (None: the command returns nothing)."""

    result: ClassVar[Any] = None


# -- settings and signing in ------------------------------------------------------


class Settings(Command, frozen=True, tag="settings"):
    """The home's settings, with the downloads folder in effect."""

    result: ClassVar[Any] = dict[str, Any]


class SaveSettings(Command, frozen=True, tag="save_settings"):
    values: dict[str, Any]


class ResumeSaved(Command, frozen=True, tag="resume_saved"):
    """Sign in with the saved token; the reply says whether it did."""

    result: ClassVar[Any] = bool


class SignIn(Command, frozen=True, tag="sign_in"):
    server: str
    username: str
    password: str
    register: bool = False


class Trust(Command, frozen=True, tag="trust"):
    identity: ServerIdentity


class SignOut(Command, frozen=True, tag="sign_out"):
    pass


# -- own profile -------------------------------------------------------------------


class UpdateProfile(Command, frozen=True, tag="update_profile"):
    display_name: str
    mood: str
    result: ClassVar[Any] = Person


class SetAvatar(Command, frozen=True, tag="set_avatar"):
    """``path``: a picture file, shrunk to fit by the engine."""

    path: str
    result: ClassVar[Any] = Person


class RemoveAvatar(Command, frozen=True, tag="remove_avatar"):
    result: ClassVar[Any] = Person


class SetPresence(Command, frozen=True, tag="set_presence"):
    status: str


class ChangePassword(Command, frozen=True, tag="change_password"):
    old: str
    new: str


# -- people and friends ------------------------------------------------------------


class SearchPeople(Command, frozen=True, tag="search_people"):
    """One page of users whose names start with ``prefix``, and the cursor."""

    prefix: str
    after: str | None = None
    result: ClassVar[Any] = tuple[list[Person], str | None]


class RequestFriend(Command, frozen=True, tag="request_friend"):
    username: str
    note: str = ""


class Respond(Command, frozen=True, tag="respond"):
    username: str
    accept: bool


class CancelRequest(Command, frozen=True, tag="cancel_request"):
    username: str


class RemoveFriend(Command, frozen=True, tag="remove_friend"):
    username: str


class Block(Command, frozen=True, tag="block"):
    username: str


# -- chat ----------------------------------------------------------------------------


class OpenConversation(Command, frozen=True, tag="open_conversation"):
    peer: str


class CloseConversation(Command, frozen=True, tag="close_conversation"):
    peer: str


class OlderMessages(Command, frozen=True, tag="older_messages"):
    """Load a page further back; the reply says whether there was one."""

    peer: str
    result: ClassVar[Any] = bool


class LoadUntil(Command, frozen=True, tag="load_until"):
    peer: str
    message_id: int


class SetViewing(Command, frozen=True, tag="set_viewing"):
    peer: str
    viewing: bool


class SendMessage(Command, frozen=True, tag="send_message"):
    """``client_id`` is chosen by the UI, so that sending the same message
    again after an engine restart never stores or delivers it twice."""

    peer: str
    text: str
    client_id: str
    result: ClassVar[Any] = LocalMessage


class SearchMessages(Command, frozen=True, tag="search_messages"):
    peer: str
    text: str
    result: ClassVar[Any] = list[LocalMessage]


class Typing(Command, frozen=True, tag="typing"):
    peer: str


# -- files ---------------------------------------------------------------------------


class SendFile(Command, frozen=True, tag="send_file"):
    peer: str
    path: str
    result: ClassVar[Any] = Transfer


class Download(Command, frozen=True, tag="download"):
    file_id: str
    result: ClassVar[Any] = Transfer


class DeclineFile(Command, frozen=True, tag="decline_file"):
    """Refuse the file ``file_id`` offered to us (the sender is told)."""

    file_id: str


class PauseTransfer(Command, frozen=True, tag="pause_transfer"):
    transfer_id: int
    result: ClassVar[Any] = Transfer


class ResumeTransfer(Command, frozen=True, tag="resume_transfer"):
    transfer_id: int
    result: ClassVar[Any] = Transfer


class CancelTransfer(Command, frozen=True, tag="cancel_transfer"):
    transfer_id: int
    result: ClassVar[Any] = Transfer


# -- meetings ------------------------------------------------------------------------


class CreateMeeting(Command, frozen=True, tag="create_meeting"):
    """Start a meeting; the reply is its code."""

    password: str = ""
    result: ClassVar[Any] = str


class JoinMeeting(Command, frozen=True, tag="join_meeting"):
    code: str
    password: str = ""
    result: ClassVar[Any] = str


class LeaveMeeting(Command, frozen=True, tag="leave_meeting"):
    pass


class EndMeeting(Command, frozen=True, tag="end_meeting"):
    pass


class SetCamera(Command, frozen=True, tag="set_camera"):
    on: bool


class SetScreen(Command, frozen=True, tag="set_screen"):
    on: bool


class RestartVideo(Command, frozen=True, tag="restart_video"):
    """``kind``: ``camera`` or ``screen`` (switch to the newly chosen source)."""

    kind: str


class VideoDevices(Command, frozen=True, tag="video_devices"):
    """The cameras that open and the screens that can be captured (probing
    opens each camera for a moment, but not the one we send)."""

    result: ClassVar[Any] = VideoDeviceList


class MeetingChat(Command, frozen=True, tag="meeting_chat"):
    text: str


class RaiseHand(Command, frozen=True, tag="raise_hand"):
    raised: bool


class LockMeeting(Command, frozen=True, tag="lock_meeting"):
    locked: bool


class Invite(Command, frozen=True, tag="invite"):
    username: str


class DeclineMeeting(Command, frozen=True, tag="decline_meeting"):
    """Say no to the invitation to meeting ``room_id``."""

    room_id: str


class RemoveMember(Command, frozen=True, tag="remove_member"):
    username: str


class MakeHost(Command, frozen=True, tag="make_host"):
    username: str


class AskToMute(Command, frozen=True, tag="ask_to_mute"):
    username: str


# -- pictures ------------------------------------------------------------------------


class RenderImage(Command, frozen=True, tag="render_image"):
    """Draw the picture named ``key``; it comes back as an ``ImageReady``."""

    key: str


class ShowTile(Command, frozen=True, tag="show_tile"):
    """Write the pictures of tile ``key`` into the shared memory ``buffer``
    (made by the UI, laid out as :mod:`client.engine.shared` says), scaled to
    ``width`` x ``height`` pixels."""

    key: str
    buffer: str
    width: int
    height: int


class DropTile(Command, frozen=True, tag="drop_tile"):
    """Stop writing pictures of tile ``key`` (its tile is gone)."""

    key: str


# -- sound ---------------------------------------------------------------------------


class AudioDevices(Command, frozen=True, tag="audio_devices"):
    """The sound devices the pickers list."""

    result: ClassVar[Any] = AudioDeviceList


class WatchInput(Command, frozen=True, tag="watch_input"):
    """Post the level of input ``device`` (``""``: the default) as
    ``InputLevel`` events; ``None`` stops."""

    device: str | None


class PlayTestTone(Command, frozen=True, tag="play_test_tone"):
    """A short tone on output ``device`` (``""``: the default)."""

    device: str


class SetMicrophone(Command, frozen=True, tag="set_microphone"):
    """Send the microphone in the meeting, or mute it."""

    on: bool


class PushToTalk(Command, frozen=True, tag="push_to_talk"):
    """The talk key went down (``pressed``) or up: send the microphone only
    while it is held (when the Mic button is off)."""

    pressed: bool


class SetPersonVolume(Command, frozen=True, tag="set_person_volume"):
    """How loud ``username`` plays for us, 0-200 %."""

    username: str
    percent: int


class SilencePerson(Command, frozen=True, tag="silence_person"):
    """Mute ``username`` for us only, or unmute."""

    username: str
    silenced: bool


COMMANDS: tuple[type[Command], ...] = tuple(Command.__subclasses__())
"""Every command the engine runs."""

AnyCommand = (
    Settings | SaveSettings | ResumeSaved | SignIn | Trust | SignOut
    | UpdateProfile | SetAvatar | RemoveAvatar | SetPresence | ChangePassword
    | SearchPeople | RequestFriend | Respond | CancelRequest | RemoveFriend | Block
    | OpenConversation | CloseConversation | OlderMessages | LoadUntil | SetViewing
    | SendMessage | SearchMessages | Typing
    | SendFile | Download | DeclineFile | PauseTransfer | ResumeTransfer
    | CancelTransfer
    | CreateMeeting | JoinMeeting | LeaveMeeting | EndMeeting | SetCamera | SetScreen
    | RestartVideo | VideoDevices | MeetingChat | RaiseHand | LockMeeting | Invite
    | DeclineMeeting | RemoveMember
    | MakeHost | AskToMute | RenderImage | ShowTile | DropTile
    | AudioDevices | WatchInput | PlayTestTone | SetMicrophone | PushToTalk
    | SetPersonVolume | SilencePerson
)  # fmt: skip


# -- envelopes -------------------------------------------------------------------------


class Request(msgspec.Struct, frozen=True, tag="request"):
    """A command from the UI; ``rid`` is the UI's number for it."""

    rid: int
    command: AnyCommand


class Reply(msgspec.Struct, frozen=True, tag="reply"):
    """The command ``rid`` succeeded; ``value`` is its result, msgpack-encoded
    (decode it with the command's ``result`` type)."""

    rid: int
    value: msgspec.Raw


class Failure(msgspec.Struct, frozen=True, tag="failure"):
    """The command ``rid`` failed, or a frame was refused (``rid`` None when
    the frame had none). ``code`` is a stable code of
    :mod:`client.engine.errors`; ``kind``, ``message`` and ``details``
    rebuild the exception (:func:`~client.engine.errors.from_failure`)."""

    rid: int | None
    code: str
    kind: str
    message: str
    details: dict[str, Any] = {}


class EventMessage(msgspec.Struct, frozen=True, tag="event"):
    """A UI event: ``kind`` is its class name, ``body`` the event
    msgpack-encoded."""

    kind: str
    body: msgspec.Raw


Up = Reply | Failure | EventMessage

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        SignedIn,
        SignedOut,
        ProfileUpdated,
        ConnectionState,
        Roster,
        ImageReady,
        ConversationUpdate,
        PeerTyping,
        TransfersChanged,
        MeetingChanged,
        MeetingChatLine,
        MeetingLeft,
        TileStats,
        Notice,
        AudioActivity,
        InputLevel,
    )
}
"""The UI events by the ``kind`` that names them on the channel."""
