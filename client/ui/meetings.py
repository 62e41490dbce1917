"""The Tk side of meetings: the dialog that starts or joins one and the
meeting window, opened, updated and closed as meeting events arrive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ttkbootstrap as ttk

from ..engine.audio_model import AudioActivity
from ..engine.model import (
    MeetingChanged,
    MeetingChatLine,
    MeetingLeft,
    Roster,
    TileStats,
)
from .controller import Controller
from .errors import describe
from .video import TileBuffers
from .views import MeetDialog, MeetingWindow

__all__ = ["Meetings"]


class Meetings:
    """Keeps the meeting window of ``root``.

    ``settings()`` gives the current settings (which camera and screen),
    ``save_setting(key, value)`` stores a new choice, ``place(window)`` puts a
    new window in its spot, ``notify(title, text, level)`` shows a notice and
    ``on_active(bool)`` hears whether we are in a meeting.
    """

    def __init__(
        self,
        root: ttk.Window,
        controller: Controller,
        frames: TileBuffers,
        *,
        settings: Callable[[], dict[str, Any]],
        save_setting: Callable[[str, str], None],
        place: Callable[[ttk.Toplevel], None],
        notify: Callable[[str, str, str], None],
        on_active: Callable[[bool], None],
    ) -> None:
        self.root = root
        self.controller = controller
        self.frames = frames
        self._settings = settings
        self._save_setting = save_setting
        self._place = place
        self._notify = notify
        self._on_active = on_active
        self.password = ""
        """The password we created or joined the meeting with (to rejoin it)."""
        self._before_restart: MeetingChanged | None = None
        self.dialog: MeetDialog | None = None
        self.window: MeetingWindow | None = None
        self.roster = Roster()

    def open(self) -> None:
        """Show the meeting, or the dialog that starts or joins one."""
        if self.window is not None:
            self.window.lift()
            return
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.lift()
            return

        def create(password: str) -> None:
            self.password = password
            self.controller.create_meeting(
                password, on_error=lambda e: dialog.on_failed(describe(e))
            )

        def join(code: str, password: str) -> None:
            self.password = password
            self.controller.join_meeting(
                code, password, on_error=lambda e: dialog.on_failed(describe(e))
            )

        dialog = MeetDialog(self.root, on_create=create, on_join=join)
        self.dialog = dialog

    def on_changed(self, state: MeetingChanged) -> None:
        if self.window is not None:
            self.window.set_state(state)
            return
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.destroy()
        settings = self._settings()
        self.window = MeetingWindow(
            self.root,
            self.controller,
            self.frames,
            state,
            camera=settings.get("camera") or "camera:0",
            screen=settings.get("screen") or "screen:1",
            on_source=self._save_setting,
            notify=self._notify,
        )
        self.window.set_roster(self.roster)
        self._place(self.window)
        self._on_active(True)

    def engine_stopped(self) -> None:
        """The engine died: remember the meeting as it was, for :meth:`rejoin`
        (the new engine's first events may show it without our video)."""
        self._before_restart = self.window.meeting if self.window else None

    def rejoin(self) -> None:
        """Join the meeting we were in again, with the video and microphone
        we sent and the volumes we chose (a new engine signed in); if that
        fails the window closes and the user hears why."""
        state, self._before_restart = self._before_restart, None
        if state is None or self.window is None:
            return

        def joined(_code: str) -> None:
            if state.camera_on:
                self.controller.set_camera(True)
            if state.screen_on:
                self.controller.set_screen(True)
            if state.microphone_on:
                self.controller.set_microphone(True)
            if self.window is not None:
                self.window.stage.people.resend()

        def failed(error: BaseException) -> None:
            self.close()
            self._notify("Meeting over", describe(error), "warning")

        self.controller.join_meeting(
            state.room_id, self.password, on_done=joined, on_error=failed
        )

    def render(self) -> None:
        """Paste the newest pictures into the tiles (every UI tick)."""
        if self.window is not None:
            self.window.render()

    def on_chat(self, line: MeetingChatLine) -> None:
        if self.window is not None:
            self.window.add_chat(line)

    def on_activity(self, activity: AudioActivity) -> None:
        if self.window is not None:
            self.window.set_activity(activity)

    def on_stats(self, stats: TileStats) -> None:
        if self.window is not None:
            self.window.set_stats(stats)

    def on_left(self, event: MeetingLeft) -> None:
        ended_here = self.window is not None and self.window.ended_by_me
        self.close()
        if ended_here and event.reason == "ended":
            self._notify("Meeting ended", "You ended the meeting for everyone.", "info")
        elif event.reason != "left":
            self._notify("Meeting over", event.message, "warning")

    def set_roster(self, roster: Roster) -> None:
        self.roster = roster
        if self.window is not None:
            self.window.set_roster(roster)

    def close(self) -> None:
        """Close the meeting window (we are out of the meeting)."""
        if self.window is not None:
            self.window.close()
            self.window = None
            self._on_active(False)
