"""What views may ask of the engine, from the Tk thread.

Every method sends one command of :mod:`client.engine.messages` and returns
at once with a ``concurrent.futures.Future``; ``on_done`` and ``on_error``
(when given) run later on the Tk thread. An error without an ``on_error`` is
shown to the user by the app. Views call only this class.
"""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import messages as m
from ..engine.audio_model import AudioDeviceList
from ..engine.errors import EngineStopped
from ..engine.model import Person, ServerIdentity
from ..engine.video_model import VideoDeviceList
from ..store import LocalMessage
from ..transfers import Transfer
from .link import EngineLink

__all__ = ["Controller"]

log = logging.getLogger("quicmeet.ui")

Done = Callable[[Any], None] | None
Failed = Callable[[BaseException], None] | None
Future = concurrent.futures.Future


def _ignore(_error: BaseException) -> None:
    """For commands whose failure the user need not hear about (typing)."""


def _log_tile_error(error: BaseException) -> None:
    """A tile's buffer the engine could not map: its tile stays dark."""
    log.warning("the engine could not use a tile's buffer: %s", error)


class Controller:
    """The command side of the link: one method per thing a view can do."""

    def __init__(self, link: EngineLink) -> None:
        self._link = link
        self.unsent: list[m.SendMessage] = []
        """Messages the engine stopped before confirming; :meth:`resend`
        sends them again (with the same client ids) to the next engine."""
        self.report: Callable[[BaseException], None] = _ignore
        """Shows an error no view handles (the app sets it)."""

    def _run(self, command: m.Command, on_done: Done = None, on_error: Failed = None):
        return self._link.call(command, on_done, on_error)

    # -- settings and signing in ----------------------------------------------------

    def settings(self, on_done: Done = None) -> Future[dict[str, Any]]:
        return self._run(m.Settings(), on_done)

    def save_settings(
        self, values: dict[str, Any], on_done: Done = None
    ) -> Future[None]:
        return self._run(m.SaveSettings(values), on_done)

    def resume_saved(
        self, on_done: Done = None, on_error: Failed = None
    ) -> Future[bool]:
        return self._run(m.ResumeSaved(), on_done, on_error)

    def sign_in(
        self,
        server: str,
        username: str,
        password: str,
        *,
        register: bool = False,
        on_done: Done = None,
        on_error: Failed = None,
    ) -> Future[None]:
        return self._run(
            m.SignIn(server, username, password, register), on_done, on_error
        )

    def trust(self, identity: ServerIdentity, on_done: Done = None) -> Future[None]:
        return self._run(m.Trust(identity), on_done)

    def sign_out(self) -> Future[None]:
        return self._run(m.SignOut())

    # -- own profile ---------------------------------------------------------------

    def update_profile(
        self,
        display_name: str,
        mood: str,
        on_done: Done = None,
        on_error: Failed = None,
    ) -> Future[Person]:
        return self._run(m.UpdateProfile(display_name, mood), on_done, on_error)

    def set_avatar(
        self, path: Path, on_done: Done = None, on_error: Failed = None
    ) -> Future[Person]:
        return self._run(m.SetAvatar(str(path)), on_done, on_error)

    def remove_avatar(self, on_done: Done = None) -> Future[Person]:
        return self._run(m.RemoveAvatar(), on_done)

    def set_presence(self, status: str) -> Future[None]:
        return self._run(m.SetPresence(status))

    def change_password(
        self, old: str, new: str, on_done: Done = None, on_error: Failed = None
    ) -> Future[None]:
        return self._run(m.ChangePassword(old, new), on_done, on_error)

    # -- people and friends ------------------------------------------------------------

    def search_people(
        self, prefix: str, after: str | None = None, on_done: Done = None
    ) -> Future[tuple[list[Person], str | None]]:
        return self._run(m.SearchPeople(prefix, after), on_done)

    def request_friend(
        self,
        username: str,
        note: str = "",
        on_done: Done = None,
        on_error: Failed = None,
    ) -> Future[None]:
        return self._run(m.RequestFriend(username, note), on_done, on_error)

    def respond(self, username: str, accept: bool) -> Future[None]:
        return self._run(m.Respond(username, accept))

    def cancel_request(self, username: str) -> Future[None]:
        return self._run(m.CancelRequest(username))

    def remove_friend(self, username: str) -> Future[None]:
        return self._run(m.RemoveFriend(username))

    def block(self, username: str) -> Future[None]:
        return self._run(m.Block(username))

    # -- chat ---------------------------------------------------------------------

    def open_conversation(self, peer: str) -> Future[None]:
        return self._run(m.OpenConversation(peer))

    def close_conversation(self, peer: str) -> Future[None]:
        return self._run(m.CloseConversation(peer), None, _ignore)

    def older_messages(self, peer: str, on_done: Done = None) -> Future[bool]:
        return self._run(m.OlderMessages(peer), on_done)

    def load_until(
        self, peer: str, message_id: int, on_done: Done = None
    ) -> Future[None]:
        return self._run(m.LoadUntil(peer, message_id), on_done)

    def set_viewing(self, peer: str, viewing: bool) -> Future[None]:
        return self._run(m.SetViewing(peer, viewing), None, _ignore)

    def send_message(
        self, peer: str, text: str, on_error: Failed = None
    ) -> Future[LocalMessage]:
        """Send ``text`` to ``peer``; if the engine stops before it confirms,
        the message is kept for :meth:`resend`."""
        return self._send(m.SendMessage(peer, text, uuid.uuid4().hex), on_error)

    def _send(self, command: m.SendMessage, on_error: Failed) -> Future[LocalMessage]:
        def failed(error: BaseException) -> None:
            if isinstance(error, EngineStopped):
                self.unsent.append(command)
            elif on_error is not None:
                on_error(error)
            else:
                self.report(error)

        return self._run(command, None, failed)

    def resend(self) -> None:
        """Send the messages a stopped engine left unconfirmed again."""
        unsent, self.unsent = self.unsent, []
        for command in unsent:
            self._send(command, None)

    def search_messages(
        self, peer: str, text: str, on_done: Done = None
    ) -> Future[list[LocalMessage]]:
        return self._run(m.SearchMessages(peer, text), on_done)

    def typing(self, peer: str) -> Future[None]:
        return self._run(m.Typing(peer), None, _ignore)

    # -- files -----------------------------------------------------------------------

    def send_file(
        self, peer: str, path: Path, on_error: Failed = None
    ) -> Future[Transfer]:
        return self._run(m.SendFile(peer, str(path)), None, on_error)

    def download(self, file_id: str) -> Future[Transfer]:
        return self._run(m.Download(file_id))

    def decline_file(self, file_id: str) -> Future[None]:
        return self._run(m.DeclineFile(file_id))

    def pause_transfer(self, transfer_id: int) -> Future[Transfer]:
        return self._run(m.PauseTransfer(transfer_id))

    def resume_transfer(self, transfer_id: int) -> Future[Transfer]:
        return self._run(m.ResumeTransfer(transfer_id))

    def cancel_transfer(self, transfer_id: int) -> Future[Transfer]:
        return self._run(m.CancelTransfer(transfer_id))

    # -- meetings ---------------------------------------------------------------------

    def create_meeting(
        self, password: str = "", on_done: Done = None, on_error: Failed = None
    ) -> Future[str]:
        return self._run(m.CreateMeeting(password), on_done, on_error)

    def join_meeting(
        self,
        code: str,
        password: str = "",
        on_done: Done = None,
        on_error: Failed = None,
    ) -> Future[str]:
        return self._run(m.JoinMeeting(code, password), on_done, on_error)

    def leave_meeting(self) -> Future[None]:
        return self._run(m.LeaveMeeting())

    def end_meeting(self) -> Future[None]:
        return self._run(m.EndMeeting())

    def set_camera(self, on: bool, on_error: Failed = None) -> Future[None]:
        return self._run(m.SetCamera(on), None, on_error)

    def set_screen(self, on: bool, on_error: Failed = None) -> Future[None]:
        return self._run(m.SetScreen(on), None, on_error)

    def restart_video(self, kind: str, on_error: Failed = None) -> Future[None]:
        return self._run(m.RestartVideo(kind), None, on_error)

    def video_devices(
        self, on_done: Done = None, on_error: Failed = None
    ) -> Future[VideoDeviceList]:
        return self._run(m.VideoDevices(), on_done, on_error)

    def meeting_chat(self, text: str) -> Future[None]:
        return self._run(m.MeetingChat(text))

    def raise_hand(self, raised: bool) -> Future[None]:
        return self._run(m.RaiseHand(raised))

    def lock_meeting(self, locked: bool) -> Future[None]:
        return self._run(m.LockMeeting(locked))

    def invite(self, username: str) -> Future[None]:
        return self._run(m.Invite(username))

    def decline_meeting(self, room_id: str) -> Future[None]:
        # Whether or not the server still held the invitation (it may have
        # expired), the user's answer is given: nothing to show on failure.
        return self._run(m.DeclineMeeting(room_id), None, lambda _error: None)

    def remove_member(self, username: str) -> Future[None]:
        return self._run(m.RemoveMember(username))

    def make_host(self, username: str) -> Future[None]:
        return self._run(m.MakeHost(username))

    def ask_to_mute(self, username: str) -> Future[None]:
        return self._run(m.AskToMute(username))

    # -- sound -----------------------------------------------------------------------

    def set_microphone(self, on: bool, on_error: Failed = None) -> Future[None]:
        return self._run(m.SetMicrophone(on), None, on_error)

    def push_to_talk(self, pressed: bool) -> Future[None]:
        return self._run(m.PushToTalk(pressed), None, _ignore)

    def set_person_volume(self, username: str, percent: int) -> Future[None]:
        return self._run(m.SetPersonVolume(username, percent))

    def silence_person(self, username: str, silenced: bool) -> Future[None]:
        return self._run(m.SilencePerson(username, silenced))

    def audio_devices(self, on_done: Done = None) -> Future[AudioDeviceList]:
        return self._run(m.AudioDevices(), on_done)

    def watch_input(self, device: str | None) -> Future[None]:
        """Level events of input ``device`` (None: stop); a device that does
        not open comes back as an ``InputLevel`` with its problem."""
        return self._run(m.WatchInput(device), None, _ignore)

    def play_test_tone(self, device: str, on_error: Failed = None) -> Future[None]:
        return self._run(m.PlayTestTone(device), None, on_error)

    def tile(self, command: m.ShowTile | m.DropTile) -> Future[None]:
        """Name a tile's shared buffer to the engine, or let it go."""
        return self._run(command, None, _log_tile_error)

    # -- pictures --------------------------------------------------------------------

    def render_image(self, key: str) -> Future[None]:
        return self._run(m.RenderImage(key), None, _ignore)
