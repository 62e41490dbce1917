"""The meeting as the meeting window sees it, on the loop thread.

:class:`MeetingModel` follows ``session.rooms`` and runs a
:class:`~client.media.Call` while we are in a room: remote pictures go from
each track's render thread straight into :class:`~client.engine.frames.TileFrames`
(never through the event queue), our own camera and screen pictures from the
capture thread through :class:`SelfView`. Room changes become
:class:`~client.engine.model.MeetingChanged` snapshots, and once a second each
tile gets a line of statistics (:mod:`.tile_stats`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codec.messages import (
    InvitationDeclined,
    MuteRequested,
    RoomChat,
    RoomInvitation,
    RoomLeft,
    RoomTrack,
    RoomUpdated,
)
from codec.messages.rooms import parse_room_id

from ...errors import ClientError
from ...rooms import RoomEvent
from ...session import Session
from ..frames import TileFrames
from .meeting_audio import AudioSettings, MeetingAudio
from .tile_stats import STATS_INTERVAL_S, TileStatLines

if TYPE_CHECKING:
    import numpy as np

    from ...media import Call, DecodedFrame, VideoSource
from ..model import (
    MeetingChanged,
    MeetingChatLine,
    MeetingLeft,
    MeetingMember,
    MeetingTile,
    Notice,
    TileStats,
    UiEvent,
)

__all__ = ["MeetingModel", "SelfView", "VideoSettings", "tile_key"]

log = logging.getLogger("quicmeet.engine.meeting")

SCREEN_SIZE = (1280, 720)
SCREEN_FPS = 10.0


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """The devices to send: ``camera`` and ``screen`` are source specs
    (``camera:0``, ``synthetic``, ``screen:1``…, see
    :func:`client.media.parse_video_source`); the camera's size and rate."""

    camera: str = "camera:0"
    screen: str = "screen:1"
    width: int = 640
    height: int = 480
    fps: float = 30.0


def tile_key(track: RoomTrack | None = None, *, own: str | None = None) -> str:
    """The key of a remote track's tile, or of our own ``camera``/``screen``."""
    if own is not None:
        return f"self:{own}"
    assert track is not None
    return f"track:{track.track_id}"


class SelfView:
    """A video source that also shows its frames in our own tile; the frames
    are scaled on the capture thread that reads them."""

    def __init__(self, source: VideoSource, frames: TileFrames, key: str) -> None:
        self._source = source
        self._frames = frames
        self._key = key
        self._count = 0
        self.width = source.width
        self.height = source.height
        self.fps = source.fps
        self.stamped = source.stamped

    def open(self) -> None:
        self._source.open()

    def read(self) -> np.ndarray:
        frame = self._source.read()
        self._frames.put(self._key, frame, self._count)
        self._count += 1
        return frame

    def close(self) -> None:
        self._source.close()


class MeetingModel:
    """Meetings of the signed-in user; ``video_settings()`` says which devices
    to send when the camera or screen sharing is turned on."""

    def __init__(
        self,
        session: Session,
        post: Callable[[UiEvent], None],
        frames: TileFrames,
        video_settings: Callable[[], VideoSettings],
        name_of: Callable[[str], str],
        audio_settings: Callable[[], AudioSettings] = AudioSettings,
    ) -> None:
        self._session = session
        self._rooms = session.rooms
        self._post = post
        self._frames = frames
        self._video_settings = video_settings
        self._name_of = name_of
        self._call: Call | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._sending: dict[str, str] = {}
        """The source spec of the camera and screen we send, by kind."""
        self._video_lock = asyncio.Lock()
        """Held while the camera or screen starts or stops: a click on Camera
        while the last one is still being undone waits its turn."""
        self._unlisten = self._rooms.add_listener(self._on_room_event)
        self.audio = MeetingAudio(post, audio_settings, self.publish)
        """The microphone, the speaker and each person's volume."""
        self._stats = TileStatLines(
            self.audio, lambda: session.rtt_ms, lambda: self._rooms.me
        )
        self._audio_task: asyncio.Task[None] | None = None

    @property
    def camera_in_use(self) -> str | None:
        """The source spec of the camera we send, None when it is off."""
        return self._sending.get("camera") if self._call is not None else None

    @property
    def call(self) -> Call | None:
        """The media of the meeting we are in (None outside one)."""
        return self._call

    def view_tile(self, key: str, width: int, height: int) -> None:
        """The UI shows tile ``key`` at ``width`` x ``height`` pixels (the
        ``show_tile`` command, sent again on every resize): a remote track
        needs no larger simulcast layer, and the server is told so
        (debounced, :class:`~client.media.views.TrackViews`)."""
        prefix, _, track = key.partition(":")
        if prefix == "track" and track.isdigit() and width > 0 and height > 0:
            if self._call is not None:
                self._call.views.set(int(track), width, height)

    # -- joining and leaving -------------------------------------------------------

    async def create(self, password: str = "") -> str:
        """Start a meeting as its host; returns its code."""
        self._ensure_call()
        try:
            state = await self._rooms.create(password or None)
        except BaseException:
            await self._end_call_if_out()
            raise
        return state.room_id

    async def join(self, code: str, password: str = "") -> str:
        """Join the meeting with ``code`` (as people type it)."""
        room_id = parse_room_id(code)
        if room_id is None:
            raise ClientError(f"{code.strip()!r} is not a meeting code")
        self._ensure_call()
        try:
            state = await self._rooms.join(room_id, password or None)
        except BaseException:
            await self._end_call_if_out()
            raise
        return state.room_id

    async def leave(self) -> None:
        """Leave the meeting (it goes on for the others)."""
        await self._rooms.leave()

    async def end(self) -> None:
        """End the meeting for everyone (host only)."""
        await self._rooms.end()

    def _ensure_call(self) -> None:
        if self._call is None:
            # The media stack (PyAV, OpenCV) loads with the first meeting: an
            # engine that only chats starts in half the time.
            from ...media import Call

            self._call = Call(self._session, [self._on_frame])
            self._call.start()
            loop = asyncio.get_running_loop()
            self._stats_task = loop.create_task(self._report_stats())
            self._audio_task = loop.create_task(self.audio.attach(self._call))

    async def _end_call_if_out(self) -> None:
        if self._rooms.state is None:
            await self._end_call()

    async def _end_call(self) -> None:
        call, self._call = self._call, None
        if self._stats_task is not None:
            self._stats_task.cancel()
            self._stats_task = None
        if self._audio_task is not None:
            # The speaker may still be opening: let it finish, then close it
            # with the call.
            await asyncio.gather(self._audio_task, return_exceptions=True)
            self._audio_task = None
        await self.audio.detach()
        if call is not None:
            await call.close()
        self._stats.clear()

    # -- what we send ------------------------------------------------------------------

    async def set_camera(self, on: bool) -> None:
        """Send our camera (the source the settings name), or stop."""
        async with self._video_lock:
            await self._camera(on)

    async def set_screen(self, on: bool) -> None:
        """Share our screen (the source the settings name), or stop."""
        async with self._video_lock:
            await self._screen(on)

    async def restart_video(self, kind: str) -> None:
        """Switch the ``camera`` or ``screen`` we send to the source the
        settings name now (nothing if it is off)."""
        async with self._video_lock:
            if self._call is not None and kind in self._call.senders:
                switch = self._camera if kind == "camera" else self._screen
                await switch(False)
                await switch(True)

    async def _camera(self, on: bool) -> None:
        settings = self._video_settings()
        await self._set_video(
            "camera", on, settings.camera, settings.width, settings.height, settings.fps
        )

    async def _screen(self, on: bool) -> None:
        width, height = SCREEN_SIZE
        await self._set_video(
            "screen", on, self._video_settings().screen, width, height, SCREEN_FPS
        )

    async def _set_video(
        self, kind: str, on: bool, spec: str, width: int, height: int, fps: float
    ) -> None:
        call = self._call
        if call is None or self._rooms.state is None:
            raise ClientError("not in a meeting")
        key = tile_key(own=kind)
        if on and kind not in call.senders:
            loop = asyncio.get_running_loop()
            from ...media import parse_video_source

            source = await loop.run_in_executor(
                None, parse_video_source, spec, width, height, fps
            )
            await call.publish_video(
                SelfView(source, self._frames, key),
                "camera" if kind == "camera" else "screen",
            )
            self._sending[kind] = spec
        elif not on:
            await call.unpublish_video(kind)
            self._sending.pop(kind, None)
            self._frames.drop(key)
        self.publish()

    # -- in the meeting ---------------------------------------------------------------

    async def invite(self, username: str) -> None:
        await self._rooms.invite(username)

    async def decline(self, room_id: str) -> None:
        """Say no to an invitation; the one who invited is told."""
        await self._rooms.decline(room_id)

    async def chat(self, text: str) -> None:
        await self._rooms.chat(text)

    async def raise_hand(self, raised: bool) -> None:
        await self._rooms.raise_hand(raised)

    async def lock(self, locked: bool) -> None:
        await self._rooms.lock(locked)

    async def remove(self, username: str) -> None:
        await self._rooms.remove(username)

    async def make_host(self, username: str) -> None:
        await self._rooms.make_host(username)

    async def ask_to_mute(self, username: str) -> None:
        await self._rooms.ask_to_mute(username)

    # -- events ---------------------------------------------------------------------

    def _on_room_event(self, event: RoomEvent) -> None:
        if isinstance(event, RoomUpdated):
            self.publish()
        elif isinstance(event, RoomChat):
            me = self._rooms.me
            self._post(
                MeetingChatLine(
                    event.sender,
                    self._name_of(event.sender),
                    event.text,
                    event.sent_ms,
                    event.sender == me,
                )
            )
        elif isinstance(event, RoomInvitation):
            self._post(
                Notice(
                    self._name_of(event.inviter),
                    "invites you to a meeting: click to join",
                    room_id=event.room_id,
                )
            )
        elif isinstance(event, RoomLeft):
            asyncio.get_running_loop().create_task(self._end_call())
            self._post(MeetingLeft(event.reason, event.message))
        elif isinstance(event, InvitationDeclined):
            self._post(
                Notice(
                    self._name_of(event.username),
                    "declined your invitation to the meeting.",
                )
            )
        elif isinstance(event, MuteRequested):
            self._post(
                Notice(
                    "Asked to mute",
                    f"{self._name_of(event.by)} asked everyone to mute.",
                    "warning",
                )
            )

    def _on_frame(self, track: RoomTrack, frame: DecodedFrame) -> None:
        """A remote picture, on its track's render thread."""
        self._frames.put(tile_key(track), frame.image, frame.frame_number)

    def publish(self) -> None:
        """Post the meeting as it is now."""
        state = self._rooms.state
        if state is None:
            return
        me = self._rooms.me
        senders = self._call.senders if self._call is not None else {}
        members = tuple(
            MeetingMember(
                m.username,
                m.display_name or m.username,
                m.host,
                m.hand_raised,
                m.muted,
                m.username == me,
            )
            for m in state.members
        )
        names = {m.username: m.name for m in members}
        tiles = [
            MeetingTile(tile_key(own=kind), me or "", "You", kind, True)
            for kind in ("camera", "screen")
            if kind in senders
        ] + [
            MeetingTile(
                tile_key(t), t.owner, names.get(t.owner, t.owner), t.kind, False
            )
            for t in state.tracks
            if t.owner != me and t.kind in ("camera", "screen")
        ]
        self._post(
            MeetingChanged(
                state.room_id,
                state.host,
                state.locked,
                state.has_password,
                members,
                tuple(tiles),
                "camera" in senders,
                "screen" in senders,
                self.audio.microphone_on,
                self.audio.problem,
            )
        )

    # -- statistics --------------------------------------------------------------------

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            if self._call is not None:
                self._post(TileStats(tuple(self._stats.lines(self._call))))

    async def close(self) -> None:
        self._unlisten()
        await self._end_call()
