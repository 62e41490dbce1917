"""The desktop client: ``quicmeet``.

:class:`App` owns the Tk root on the main thread and an
:class:`~client.ui.link.EngineLink` to the engine process that runs the
client core. It swaps the login and main views, and every UI tick dispatches
the events drained from the link to what shows them: its own views, the chat
windows (:class:`~client.ui.chats.Chats`) and the meeting
(:class:`~client.ui.meetings.Meetings`). When the engine dies it starts a new
one and takes the user back where they were.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ttkbootstrap as ttk
from PIL import Image

from ..engine.audio_model import AudioActivity, InputLevel
from ..engine.errors import EngineStopped, NotSignedIn
from ..engine.model import (
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
    SignedIn,
    SignedOut,
    TileStats,
    TransfersChanged,
    UiEvent,
)
from ..errors import ClientError
from ..home import Home
from .chats import Chats
from .controller import Controller
from .errors import describe
from .link import CommandDone, EngineExited, EngineLink
from .meetings import Meetings
from .recovery import EngineRecovery
from .ticker import Ticker
from .video import TileBuffers
from .views import (
    LIGHT_THEME,
    ChatWindow,
    ImageStore,
    LoginView,
    MainView,
    SettingsDialog,
    Toasts,
    TransfersWindow,
    open_file,
    open_folder,
    prepare_styles,
)

__all__ = ["App"]

log = logging.getLogger("quicmeet.ui")

DEFAULT_SERVER = "127.0.0.1:4433"
POLL_MS = 15
"""The UI tick: the Tk thread drains the link's queue and shows the meeting's
new pictures. Each tick shows only pictures that arrived since the last one,
so it runs well above the frame rate (a 30 fps track against a 33 ms tick
drifts in and out of phase, and two pictures in one tick lose one of them)."""
ENGINE_START_S = 30.0
"""How long the window waits for a new engine's first answer (its imports
take about a second here, several on a slow, busy machine)."""
MAIN_SIZE = (400, 680)
SIGN_OUT_NOTICES = {
    "signed_in_elsewhere": "This account signed in on another device.",
    "password_changed": "The password was changed on another device.",
    "token_invalid": "The sign-in expired; enter your password.",
    "connection_lost": "The connection to the server was lost.",
}


class App:
    """One desktop client window and everything behind it.

    Several may run in one process one after the other (tests do); ``run()``
    enters the Tk main loop, :meth:`close` ends everything.
    """

    def __init__(
        self,
        home: Home,
        *,
        server: str | None = None,
        ca_file: Path | None = None,
        theme: str | None = None,
        position: tuple[int, int] | None = None,
        auto_sign_in: bool = True,
        idle_timeout: float = 5.0,
    ) -> None:
        self.home = home
        self.link = EngineLink(home.path, ca_file=ca_file, idle_timeout=idle_timeout)
        self.link.start()
        self.controller = Controller(self.link)
        self.controller.report = self.report_error
        self.frames = TileBuffers(self.controller.tile)
        """Meeting pictures, written by the engine into one buffer per tile."""
        try:
            settings = self.link.wait(self.controller.settings(), ENGINE_START_S)
        except BaseException:
            self.link.close()
            raise
        self.theme = theme or settings.get("theme") or LIGHT_THEME
        self.root = ttk.Window(
            title="quicmeet",
            themename=self.theme,
            size=MAIN_SIZE,
            minsize=(340, 480),
            position=position,
        )
        self.images = ImageStore(self.root, self.controller.render_image)
        self.toasts = Toasts(self.root)
        self.settings = settings
        self.server = server or settings.get("server") or DEFAULT_SERVER
        self.me: Person | None = None
        self.login: LoginView | None = None
        self.main: MainView | None = None
        self.chats = Chats(
            self.root,
            self.controller,
            images=lambda: self.images,
            notify=self.notify,
            open_folder=lambda path: self.opener(path),
            open_file=lambda path: self.file_opener(path),
            origin=self._new_window_origin,
        )
        self.transfers = TransfersChanged()
        self.transfers_window: TransfersWindow | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.meetings = Meetings(
            self.root,
            self.controller,
            self.frames,
            settings=lambda: self.settings,
            save_setting=self.on_video_source,
            place=self._place_beside_main,
            notify=self.notify,
            on_active=self._set_in_meeting,
        )
        self.opener: Callable[[Path], None] = open_folder
        """Shows a file's folder (tests replace it)."""
        self.file_opener: Callable[[Path], None] = open_file
        """Opens a received file (tests replace it)."""
        self.closed = False
        self.recovery = EngineRecovery(self)
        """Starts a new engine when this one dies and takes the user back."""
        self._handlers: dict[type, Callable[[Any], None]] = {
            CommandDone: self.on_command_done,
            EngineExited: self.recovery.on_engine_exited,
            SignedIn: self.on_signed_in,
            SignedOut: self.on_signed_out,
            ProfileUpdated: self.on_profile,
            ConnectionState: self.on_connection,
            Roster: self.on_roster,
            ImageReady: self.on_image,
            ConversationUpdate: self.chats.on_conversation,
            PeerTyping: self.chats.on_typing,
            TransfersChanged: self.on_transfers,
            MeetingChanged: self.meetings.on_changed,
            MeetingChatLine: self.meetings.on_chat,
            MeetingLeft: self.meetings.on_left,
            TileStats: self.meetings.on_stats,
            Notice: self.on_notice,
            AudioActivity: self.meetings.on_activity,
            InputLevel: self.on_input_level,
        }
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self._pump = Ticker(self.root, POLL_MS, self._tick)
        self._pump.start()
        self.root.after_idle(prepare_styles, self.root)
        self.show_login(username=settings.get("username", ""))
        if auto_sign_in and home.saved_session() is not None:
            self._resume_saved()

    # -- the event pump ----------------------------------------------------------------

    def _tick(self) -> None:
        self.link.drain(self.handle)
        self.meetings.render()

    def handle(self, event: UiEvent | CommandDone | EngineExited) -> None:
        """Show one event (Tk thread); a failing view is logged, not fatal."""
        try:
            self._handlers[type(event)](event)
        except Exception:
            log.exception("showing %s failed", type(event).__name__)

    def on_command_done(self, done: CommandDone) -> None:
        if done.error is None:
            if done.on_done is not None:
                done.on_done(done.value)
        elif done.on_error is not None:
            done.on_error(done.error)
        else:
            self.report_error(done.error)

    def report_error(self, error: BaseException) -> None:
        if isinstance(error, NotSignedIn | EngineStopped):
            return
        if not isinstance(error, ClientError):
            log.error("command failed", exc_info=error)
        self.notify("Something went wrong", describe(error), "danger")

    # -- views -------------------------------------------------------------------------

    def _set_content(self, view: LoginView | MainView) -> None:
        for old in (self.login, self.main):
            if old is not None and old is not view:
                old.destroy()
        self.login = view if isinstance(view, LoginView) else None
        self.main = view if isinstance(view, MainView) else None
        view.pack(fill="both", expand=True)
        for toast_frame in self.root.place_slaves():
            toast_frame.lift()

    def show_login(self, message: str = "", username: str | None = None) -> None:
        self.chats.close_all()
        if self.transfers_window is not None:
            self.transfers_window.destroy()
            self.transfers_window = None
        self.meetings.close()
        self.transfers = TransfersChanged()
        if username is None:
            username = self.me.username if self.me else ""
        login = LoginView(
            self.root, self.controller, server=self.server, username=username
        )
        self._set_content(login)
        login.show_message(message)
        login.focus_first_empty()

    def _resume_saved(self) -> None:
        assert self.login is not None
        login = self.login
        login.set_working(True)
        login.show_message("")

        def done(signed_in: bool) -> None:
            if login.winfo_exists():
                login.set_working(False)

        def failed(error: BaseException) -> None:
            if login.winfo_exists():
                login.set_working(False)
                login.show_message(describe(error))

        self.controller.resume_saved(on_done=done, on_error=failed)

    def on_signed_in(self, event: SignedIn) -> None:
        if (
            self.recovery.recovering
            and self.main is not None
            and self.me is not None
            and self.me.username == event.me.username
        ):
            # A new engine signed the same user in again: keep the windows.
            self.on_profile(ProfileUpdated(event.me))
            self.main.set_connection(ConnectionState(True))
            return
        self.me = event.me
        self.server = event.server
        main = MainView(
            self.root,
            self.controller,
            self.images,
            event.me,
            on_open_chat=self.open_chat,
            on_settings=self.open_settings,
            on_transfers=self.open_transfers,
            on_meet=self.meetings.open,
            notify=self.notify,
        )
        self._set_content(main)
        self.root.title(f"{event.me.name} — quicmeet")

    def on_signed_out(self, event: SignedOut) -> None:
        notice = SIGN_OUT_NOTICES.get(event.reason)
        if notice is not None:
            self.notify("Signed out", notice, "warning")
        self.images = ImageStore(self.root, self.controller.render_image)
        self.root.title("quicmeet")
        self.show_login(notice or "")

    def on_profile(self, event: ProfileUpdated) -> None:
        self.me = event.me
        if self.main is not None:
            self.main.set_me(event.me)
            dialog = self.main.profile_dialog
            if dialog is not None and dialog.winfo_exists():
                dialog.set_me(event.me)

    def on_connection(self, event: ConnectionState) -> None:
        if self.main is not None:
            self.main.set_connection(event)

    def on_roster(self, roster: Roster) -> None:
        if self.main is not None:
            self.main.set_roster(roster)
        self.chats.set_roster(roster)
        self.meetings.set_roster(roster)

    def on_image(self, event: ImageReady) -> None:
        picture = Image.frombytes(event.mode, (event.width, event.height), event.pixels)
        self.images.put(event.key, picture)

    def on_transfers(self, snapshot: TransfersChanged) -> None:
        self.transfers = snapshot
        if self.transfers_window is not None and self.transfers_window.winfo_exists():
            self.transfers_window.panel.show(snapshot)
        self.chats.set_transfers(snapshot)

    def on_video_source(self, kind: str, spec: str) -> None:
        self.settings = {**self.settings, kind: spec}
        self.controller.save_settings({kind: spec})

    def _set_in_meeting(self, active: bool) -> None:
        if self.main is not None:
            self.main.in_meeting = active

    def _place_beside_main(self, window: ttk.Toplevel) -> None:
        window.geometry("+{}+{}".format(*self._new_window_origin()))

    def on_notice(self, notice: Notice) -> None:
        """A notice; clicking it opens its chat or joins its meeting."""
        if notice.peer is not None:
            self.toasts.show(
                notice.title,
                notice.text,
                notice.level,
                key=f"chat:{notice.peer}",
                on_click=functools.partial(self.open_chat, notice.peer),
            )
        elif notice.room_id is not None and self.main is not None:
            self.main.show_invitation(
                notice.room_id,
                notice.title,
                functools.partial(self.controller.join_meeting, notice.room_id),
                functools.partial(self.controller.decline_meeting, notice.room_id),
            )
        else:
            self.notify(notice.title, notice.text, notice.level)

    def notify(self, title: str, text: str, level: str = "info") -> None:
        self.toasts.show(title, text, level)

    # -- windows -----------------------------------------------------------------------

    def open_chat(self, peer: str) -> ChatWindow | None:
        """Show the chat with ``peer`` (a friend), opening its window if needed."""
        if self.main is None:
            return None
        return self.chats.open(peer)

    def _new_window_origin(self) -> tuple[int, int]:
        """Where a new window goes: right of the main window."""
        return (
            self.root.winfo_rootx() + self.root.winfo_width() + 12,
            self.root.winfo_rooty(),
        )

    def open_transfers(self) -> TransfersWindow:
        """Show the transfers window."""
        window = self.transfers_window
        if window is None or not window.winfo_exists():
            window = TransfersWindow(
                self.root, self.controller, self.transfers, lambda p: self.opener(p)
            )
            self._place_beside_main(window)
            self.transfers_window = window
        window.deiconify()
        window.lift()
        return window

    def open_settings(self) -> None:
        if self.settings_dialog is not None and self.settings_dialog.winfo_exists():
            self.settings_dialog.lift()
            return

        def show(settings: dict[str, Any]) -> None:
            self.settings_dialog = SettingsDialog(
                self.root,
                settings,
                current_theme=self.theme,
                data_folder=str(self.home.path),
                on_save=self.on_settings_saved,
                on_preview=self.apply_theme,
                controller=self.controller,
            )
            self.controller.video_devices(on_done=self.settings_dialog.set_devices)

        self.controller.settings(on_done=show)

    def on_input_level(self, event: InputLevel) -> None:
        """The microphone level for the settings' meter."""
        dialog = self.settings_dialog
        if dialog is not None and dialog.winfo_exists() and dialog.audio is not None:
            dialog.audio.set_level(event)

    def on_settings_saved(self, changes: dict[str, Any]) -> None:
        self.settings = {**self.settings, **changes}
        self.apply_theme(changes["theme"])
        if "server" in changes:
            self.server = changes["server"]
        self.controller.save_settings(changes)

    def apply_theme(self, theme: str) -> None:
        self.theme = theme
        ttk.Style.get_instance().theme_use(theme)
        prepare_styles(self.root)

    # -- lifecycle ---------------------------------------------------------------------

    def run(self) -> None:
        """Enter the Tk main loop until the window is closed."""
        self.root.mainloop()

    def close(self) -> None:
        """Close the connection (keeping the saved sign-in) and the window."""
        if self.closed:
            return
        self.closed = True
        self._pump.stop()
        self.root.withdraw()
        self.link.close()
        self.frames.close()
        self.root.destroy()
