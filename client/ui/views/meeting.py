"""The meeting window: the video stage, the toolbar, members and chat.

It shows :class:`~client.engine.model.MeetingChanged` snapshots and pastes the
newest pictures into the tiles on a frame tick of its own; every button is a
controller command.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...engine.audio_model import AudioActivity
from ...engine.model import MeetingChanged, MeetingChatLine, Roster, TileStats
from ...engine.video_model import VideoDeviceList
from ..controller import Controller
from ..errors import describe
from ..video import TileBuffers
from .dialogs import ConfirmDialog
from .meeting_panel import MeetingChat, MembersPanel
from .placement import OnScreen
from .source_box import SourceBox
from .talk_key import TalkKey
from .tiles import VideoStage, with_member_tiles

__all__ = ["MeetingWindow"]

COPIED_MS = 2000
"""How long "Copy code" says it copied, in ms."""
MIN_WIDTH, MIN_HEIGHT = 760, 480
"""The smallest window, in pixels, unless the toolbar needs more width."""


class MeetingWindow(OnScreen, ttk.Toplevel):
    """One meeting. ``settings`` holds the chosen camera and screen;
    ``on_source(kind, spec)`` stores a new choice; ``notify(title, text,
    level)`` shows a notice."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        frames: TileBuffers,
        state: MeetingChanged,
        *,
        camera: str,
        screen: str,
        on_source: Callable[[str, str], None],
        notify: Callable[[str, str, str], None],
    ) -> None:
        super().__init__(
            master=master,
            title="Meeting — quicmeet",
            size=(1180, 680),
            minsize=(MIN_WIDTH, MIN_HEIGHT),
        )
        self.controller = controller
        self.frames = frames
        self.meeting = state
        self._on_source = on_source
        self._notify = notify
        self.microphone_var = tk.BooleanVar(self, False)
        self.camera_var = tk.BooleanVar(self, False)
        self.screen_var = tk.BooleanVar(self, False)
        self.hand_var = tk.BooleanVar(self, False)
        self.speaker_var = tk.BooleanVar(self, False)
        self.stats_var = tk.BooleanVar(self, False)
        self.stats_lines: dict[str, str] = {}
        self.audio_problem = ""
        """Why sound is off in this meeting (empty when it is on)."""
        self.confirm: ConfirmDialog | None = None
        self.ended_by_me = False
        self._copied_timer: str | None = None
        self.create_header()
        self.create_toolbar(camera, screen)
        self.create_body()
        self.protocol("WM_DELETE_WINDOW", self.on_leave)
        self.talk_key = TalkKey(self, self.controller.push_to_talk)
        self.fit_toolbar()
        self.set_state(state)
        for box in (self.camera_box, self.screen_box):
            box.configure(postcommand=self.find_devices)
        self.find_devices()

    # -- layout --------------------------------------------------------------------

    def create_header(self) -> None:
        header = ttk.Frame(self, padding=(14, 10))
        header.pack(fill="x")
        ttk.Label(header, text="Meeting", font="-size 13 -weight bold").pack(
            side="left"
        )
        self.code_label = ttk.Label(header, font="TkFixedFont", bootstyle="primary")
        self.code_label.pack(side="left", padx=(12, 0))
        self.copy_button = ttk.Button(
            header, text="Copy code", command=self.on_copy_code, bootstyle="link"
        )
        self.copy_button.pack(side="left")
        self.lock_label = ttk.Label(header, bootstyle="warning")
        self.lock_label.pack(side="left", padx=(8, 0))
        self.sound_label = ttk.Label(header, bootstyle="warning")
        self.sound_label.pack(side="left", padx=(12, 0))
        self.problem_label = ttk.Label(
            self, bootstyle="@danger", padding=(14, 6), wraplength=1000
        )
        self.problem_label.bind("<Button-1>", lambda _e: self.show_problem(""))
        self.hands_label = ttk.Label(
            self, bootstyle="@warning", padding=(14, 6), font="-weight bold"
        )

    def create_toolbar(self, camera: str, screen: str) -> None:
        self.toolbar = bar = ttk.Frame(self, padding=(14, 8))
        bar.pack(side="bottom", fill="x")
        self.microphone_button = ttk.Checkbutton(
            bar,
            text="Mic",
            variable=self.microphone_var,
            command=self.on_microphone,
            bootstyle="success-toolbutton",
        )
        self.microphone_button.pack(side="left", padx=(0, 12))
        self.camera_button = ttk.Checkbutton(
            bar,
            text="Camera",
            variable=self.camera_var,
            command=self.on_camera,
            bootstyle="success-toolbutton",
        )
        self.camera_button.pack(side="left")
        self.camera_box = SourceBox(
            bar, "camera", camera, 12, lambda spec: self.use_source("camera", spec)
        )
        self.camera_box.pack(side="left", padx=(4, 12))
        self.screen_button = ttk.Checkbutton(
            bar,
            text="Share screen",
            variable=self.screen_var,
            command=self.on_screen,
            bootstyle="success-toolbutton",
        )
        self.screen_button.pack(side="left")
        self.screen_box = SourceBox(
            bar, "screen", screen, 12, lambda spec: self.use_source("screen", spec)
        )
        self.screen_box.pack(side="left", padx=(4, 12))
        self.hand_button = ttk.Checkbutton(
            bar,
            text="☝ Raise hand",
            variable=self.hand_var,
            command=self.on_hand,
            bootstyle="warning-toolbutton",
        )
        self.hand_button.pack(side="left", padx=(0, 12))
        self.speaker_button = ttk.Checkbutton(
            bar,
            text="Speaker view",
            variable=self.speaker_var,
            command=self.on_layout,
            bootstyle="secondary-toolbutton",
        )
        self.speaker_button.pack(side="left")
        self.stats_button = ttk.Checkbutton(
            bar,
            text="Statistics",
            variable=self.stats_var,
            command=self.on_stats,
            bootstyle="secondary-toolbutton",
        )
        self.stats_button.pack(side="left", padx=(4, 0))
        self.leave_button = ttk.Button(
            bar, text="Leave", command=self.on_leave, bootstyle="danger"
        )
        # Packed ahead of the toggles: a narrow window squeezes them, never
        # Leave and End for all.
        self.leave_button.pack(side="right", before=self.camera_button)
        self.end_button = ttk.Button(
            bar, text="End for all", command=self.on_end, bootstyle="danger-outline"
        )

    def create_body(self) -> None:
        body = ttk.Frame(self)
        body.pack(fill="both", expand=True)
        side = ttk.Frame(body, padding=(0, 0, 14, 0), width=280)
        side.pack(side="right", fill="y")
        self.members = MembersPanel(side, self.controller, self.ask)
        self.members.pack(fill="x")
        self.chat = MeetingChat(side, self.controller)
        self.chat.pack(fill="both", expand=True, pady=(10, 0))
        self.stage = VideoStage(
            body,
            self.frames,
            on_volume=self.controller.set_person_volume,
            on_silence=self.controller.silence_person,
        )
        self.stage.bind(
            "<<LayoutChanged>>",
            lambda _e: self.speaker_var.set(self.stage.speaker_layout),
        )
        self.stage.pack(side="left", fill="both", expand=True)

    def fit_toolbar(self) -> None:
        """Keep the window at least as wide as its toolbar, so no button is
        ever cut off: End for all comes and goes with the host's seat, and the
        device boxes widen to their longest name."""
        self.toolbar.update_idletasks()
        width = max(MIN_WIDTH, self.toolbar.winfo_reqwidth())
        self.minsize(width, MIN_HEIGHT)
        if self.winfo_ismapped() and self.winfo_width() < width:
            # Grown here rather than by the window manager, so that it is
            # placed on the screen again at its new width.
            height = self.winfo_height()
            self.geometry(f"{width}x{height}+{self.winfo_x()}+{self.winfo_y()}")

    # -- updates -------------------------------------------------------------------

    def set_state(self, state: MeetingChanged) -> None:
        self.meeting = state
        self.code_label.configure(text=state.room_id)
        self.lock_label.configure(text="locked" if state.locked else "")
        self.camera_var.set(state.camera_on)
        self.screen_var.set(state.screen_on)
        self.microphone_var.set(state.microphone_on)
        self.show_audio_problem(state.audio_problem)
        me = state.me
        self.hand_var.set(me is not None and me.hand_raised)
        host = me is not None and me.host
        if host != bool(self.end_button.winfo_manager()):
            if host:
                self.end_button.pack(
                    side="right", padx=(0, 8), before=self.camera_button
                )
            else:
                self.end_button.pack_forget()
            self.fit_toolbar()
        self.show_hands(state)
        self.stage.set_tiles(with_member_tiles(state.tiles, state.members))
        self.speaker_var.set(self.stage.speaker_layout)
        self.stage.set_members(state.members)
        self.stage.set_stats(self.stats_lines, self.stats_var.get())
        self.members.set_state(state)

    def set_roster(self, roster: Roster) -> None:
        self.members.set_roster(roster)

    def add_chat(self, line: MeetingChatLine) -> None:
        self.chat.add(line)

    def set_activity(self, activity: AudioActivity) -> None:
        """Ring the tiles of who speaks; the speaker view follows the active
        speaker."""
        self.stage.set_activity(activity)

    def set_stats(self, stats: TileStats) -> None:
        self.stats_lines = dict(stats.lines)
        self.stage.set_stats(self.stats_lines, self.stats_var.get())

    def render(self) -> None:
        """Show the pictures that arrived since the last call (every UI tick)."""
        self.stage.render()

    def close(self) -> None:
        """Close the window (the meeting was left)."""
        for key in list(self.stage.tiles):
            self.frames.drop(key)
        self.destroy()

    # -- handlers ------------------------------------------------------------------

    def show_hands(self, state: MeetingChanged) -> None:
        """Tell the host, above the stage, whose hands are up."""
        me = state.me
        hands = [m.name for m in state.members if m.hand_raised and not m.me]
        if me is None or not me.host or not hands:
            self.hands_label.pack_forget()
            return
        who = (
            hands[0] if len(hands) == 1 else ", ".join(hands[:-1]) + " and " + hands[-1]
        )
        verb = "raised a hand" if len(hands) == 1 else "raised their hands"
        self.hands_label.configure(text=f"☝ {who} {verb}")
        if not self.hands_label.winfo_ismapped():
            self.hands_label.pack(fill="x", after=self.copy_button.master)

    def on_copy_code(self) -> None:
        self.clipboard_clear()
        self.clipboard_append(self.meeting.room_id)
        self.copy_button.configure(text="Copied ✓")
        if self._copied_timer is not None:
            self.after_cancel(self._copied_timer)
        self._copied_timer = self.after(COPIED_MS, self._end_copied)

    def destroy(self) -> None:
        """Close, with the timers that would outlive the window."""
        if self._copied_timer is not None:
            self.after_cancel(self._copied_timer)
            self._copied_timer = None
        self.talk_key.cancel()
        super().destroy()

    def _end_copied(self) -> None:
        self._copied_timer = None
        self.copy_button.configure(text="Copy code")

    def ask(
        self, title: str, text: str, action: str, then: Callable[[], object]
    ) -> None:
        """Confirm a destructive action first (one question at a time)."""
        if self.confirm is not None and self.confirm.winfo_exists():
            self.confirm.destroy()
        self.confirm = ConfirmDialog(self, title, text, action, then)

    def on_microphone(self) -> None:
        self.controller.set_microphone(
            self.microphone_var.get(), on_error=self.on_microphone_failed
        )

    def on_microphone_failed(self, error: BaseException) -> None:
        """Say above the stage why the microphone did not start."""
        text = f"The microphone did not start: {describe(error)}"
        if not self.winfo_exists():
            self._notify("Microphone off", text, "danger")
            return
        self.show_problem(text)
        self.set_state(self.meeting)

    def show_audio_problem(self, text: str) -> None:
        """Say in the header why sound is off (empty: it is on)."""
        self.audio_problem = text
        self.sound_label.configure(text=f"No sound ({text})" if text else "")

    def on_camera(self) -> None:
        self.show_problem("")
        self.controller.set_camera(
            self.camera_var.get(), on_error=lambda e: self.on_video_failed("camera", e)
        )

    def on_screen(self) -> None:
        self.show_problem("")
        self.controller.set_screen(
            self.screen_var.get(), on_error=lambda e: self.on_video_failed("screen", e)
        )

    def on_video_failed(self, kind: str, error: BaseException) -> None:
        """Say in the meeting, above the stage, why the video did not start."""
        what = "The camera" if kind == "camera" else "Screen sharing"
        text = f"{what} did not start: {describe(error)}"
        if not self.winfo_exists():
            self._notify("Video not sent", text, "danger")
            return
        self.show_problem(text)
        self.set_state(self.meeting)

    def show_problem(self, text: str) -> None:
        """A red line above the stage (empty hides it); a click dismisses it."""
        self.problem_label.configure(text=text)
        if not text:
            self.problem_label.pack_forget()
        elif not self.problem_label.winfo_ismapped():
            self.problem_label.pack(fill="x", after=self.copy_button.master)

    def find_devices(self) -> None:
        """Ask the engine which cameras and screens this machine has."""
        self.controller.video_devices(on_done=self.set_devices)

    def set_devices(self, devices: VideoDeviceList) -> None:
        """List the devices found; keep a choice that is gone from changing
        the settings silently."""
        if not self.winfo_exists():
            return
        for box, found in (
            (self.camera_box, devices.cameras),
            (self.screen_box, devices.screens),
        ):
            if box.set_devices(found):
                self._on_source(box.kind, box.spec)
        self.fit_toolbar()

    def use_source(self, kind: str, spec: str) -> None:
        """Make ``spec`` the camera or screen (restarting that video if on)."""
        box = self.camera_box if kind == "camera" else self.screen_box
        box.select(spec)
        self.fit_toolbar()
        self.show_problem("")
        self._on_source(kind, spec)
        self.controller.restart_video(
            kind, on_error=lambda e: self.on_video_failed(kind, e)
        )

    def on_hand(self) -> None:
        self.controller.raise_hand(self.hand_var.get())

    def on_layout(self) -> None:
        self.stage.set_speaker_layout(self.speaker_var.get())

    def on_stats(self) -> None:
        self.stage.set_stats(self.stats_lines, self.stats_var.get())

    def on_leave(self) -> None:
        me = self.meeting.me
        others = [m for m in self.meeting.members if not m.me]
        if me is None or not me.host or not others:
            self.controller.leave_meeting()
            return
        self.ask(
            "Leave the meeting?",
            "You are the host. The meeting goes on without you and another "
            "member becomes the host.",
            "Leave",
            self.controller.leave_meeting,
        )

    def on_end(self) -> None:
        self.ask(
            "End the meeting for everyone?",
            f"All {len(self.meeting.members)} members will be taken out of the "
            "meeting.",
            "End for all",
            self._end,
        )

    def _end(self) -> None:
        self.ended_by_me = True
        self.controller.end_meeting()
