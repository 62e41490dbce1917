"""What each command of :mod:`client.engine.messages` does in the engine:
one coroutine per command type, over the :class:`~client.engine.backend.Backend`
and the tiles' shared buffers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import messages as m
from .backend import Backend
from .backend.devices import video_devices
from .errors import NotSignedIn
from .frames import TileFrames

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[Backend, TileFrames, Any], Awaitable[Any]]


async def _typing(backend: Backend, _frames: TileFrames, c: m.Typing) -> None:
    backend.account().conversations.user_typing(c.peer)


async def _show_tile(backend: Backend, frames: TileFrames, c: m.ShowTile) -> None:
    frames.attach(c.key, c.buffer, (c.width, c.height))
    if c.key.startswith("track:"):
        # A remote track's tile: its size is the most the server need send
        # (a tile named again after signing out has no meeting to tell).
        try:
            meeting = backend.account().meeting
        except NotSignedIn:
            return
        meeting.view_tile(c.key, c.width, c.height)


async def _drop_tile(_backend: Backend, frames: TileFrames, c: m.DropTile) -> None:
    frames.drop(c.key)


async def _set_person_volume(
    backend: Backend, _frames: TileFrames, c: m.SetPersonVolume
) -> None:
    backend.account().meeting.audio.set_volume(c.username, c.percent)


async def _silence_person(
    backend: Backend, _frames: TileFrames, c: m.SilencePerson
) -> None:
    backend.account().meeting.audio.set_silenced(c.username, c.silenced)


HANDLERS: dict[type[m.Command], Handler] = {
    m.Settings: lambda b, f, c: b.settings(),
    m.SaveSettings: lambda b, f, c: b.save_settings(**c.values),
    m.ResumeSaved: lambda b, f, c: b.resume_saved(),
    m.SignIn: lambda b, f, c: b.sign_in(
        c.server, c.username, c.password, register=c.register
    ),
    m.Trust: lambda b, f, c: b.trust(c.identity),
    m.SignOut: lambda b, f, c: b.sign_out(),
    m.UpdateProfile: lambda b, f, c: b.account().update_profile(c.display_name, c.mood),
    m.SetAvatar: lambda b, f, c: b.account().set_avatar(Path(c.path)),
    m.RemoveAvatar: lambda b, f, c: b.account().remove_avatar(),
    m.SetPresence: lambda b, f, c: b.account().set_presence(c.status),
    m.ChangePassword: lambda b, f, c: b.account().change_password(c.old, c.new),
    m.SearchPeople: lambda b, f, c: b.account().search_people(c.prefix, c.after),
    m.RequestFriend: lambda b, f, c: b.account().request_friend(c.username, c.note),
    m.Respond: lambda b, f, c: b.account().respond(c.username, c.accept),
    m.CancelRequest: lambda b, f, c: b.account().cancel_request(c.username),
    m.RemoveFriend: lambda b, f, c: b.account().remove_friend(c.username),
    m.Block: lambda b, f, c: b.account().block(c.username),
    m.OpenConversation: lambda b, f, c: b.account().conversations.open(c.peer),
    m.CloseConversation: lambda b, f, c: b.account().conversations.close(c.peer),
    m.OlderMessages: lambda b, f, c: b.account().conversations.older(c.peer),
    m.LoadUntil: lambda b, f, c: b.account().conversations.load_until(
        c.peer, c.message_id
    ),
    m.SetViewing: lambda b, f, c: b.account().conversations.set_viewing(
        c.peer, c.viewing
    ),
    m.SendMessage: lambda b, f, c: b.account().conversations.send(
        c.peer, c.text, c.client_id
    ),
    m.SearchMessages: lambda b, f, c: b.account().conversations.search(c.peer, c.text),
    m.Typing: _typing,
    m.SendFile: lambda b, f, c: b.account().send_file(c.peer, Path(c.path)),
    m.Download: lambda b, f, c: b.account().download(c.file_id),
    m.DeclineFile: lambda b, f, c: b.account().decline_file(c.file_id),
    m.PauseTransfer: lambda b, f, c: b.account().pause_transfer(c.transfer_id),
    m.ResumeTransfer: lambda b, f, c: b.account().resume_transfer(c.transfer_id),
    m.CancelTransfer: lambda b, f, c: b.account().cancel_transfer(c.transfer_id),
    m.CreateMeeting: lambda b, f, c: b.account().meeting.create(c.password),
    m.JoinMeeting: lambda b, f, c: b.account().meeting.join(c.code, c.password),
    m.LeaveMeeting: lambda b, f, c: b.account().meeting.leave(),
    m.EndMeeting: lambda b, f, c: b.account().meeting.end(),
    m.SetCamera: lambda b, f, c: b.account().meeting.set_camera(c.on),
    m.SetScreen: lambda b, f, c: b.account().meeting.set_screen(c.on),
    m.RestartVideo: lambda b, f, c: b.account().meeting.restart_video(c.kind),
    m.VideoDevices: lambda b, f, c: video_devices(b),
    m.MeetingChat: lambda b, f, c: b.account().meeting.chat(c.text),
    m.RaiseHand: lambda b, f, c: b.account().meeting.raise_hand(c.raised),
    m.LockMeeting: lambda b, f, c: b.account().meeting.lock(c.locked),
    m.Invite: lambda b, f, c: b.account().meeting.invite(c.username),
    m.DeclineMeeting: lambda b, f, c: b.account().meeting.decline(c.room_id),
    m.RemoveMember: lambda b, f, c: b.account().meeting.remove(c.username),
    m.MakeHost: lambda b, f, c: b.account().meeting.make_host(c.username),
    m.AskToMute: lambda b, f, c: b.account().meeting.ask_to_mute(c.username),
    m.RenderImage: lambda b, f, c: b.account().avatars.render(c.key),
    m.ShowTile: _show_tile,
    m.DropTile: _drop_tile,
    m.AudioDevices: lambda b, f, c: b.sound.devices(),
    m.WatchInput: lambda b, f, c: b.sound.watch_input(c.device),
    m.PlayTestTone: lambda b, f, c: b.sound.play_tone(c.device),
    m.SetMicrophone: lambda b, f, c: b.account().meeting.audio.set_microphone(c.on),
    m.PushToTalk: lambda b, f, c: b.account().meeting.audio.push_to_talk(c.pressed),
    m.SetPersonVolume: _set_person_volume,
    m.SilencePerson: _silence_person,
}
"""The coroutine that runs each command (every one of ``COMMANDS`` has one)."""
