"""What the window does when its engine process dies: say so, start a new
engine, and take the user back where they were.

The new engine signs in with the saved token; the main window and the chat
windows stay as they were (drafts in their composers too), the open
conversations are followed again, the meeting is joined again with the
video that was on, and messages the dead engine had not confirmed are sent
again under their client ids. Unfinished transfers resume at the login.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..engine.model import ConnectionState
from .errors import describe
from .link import EngineExited
from .views import ImageStore

if TYPE_CHECKING:
    from .app import App

__all__ = ["EngineRecovery"]

log = logging.getLogger("quicmeet.ui")

MAX_QUICK_DEATHS = 3
QUICK_DEATHS_S = 60.0
"""An engine that dies more than ``MAX_QUICK_DEATHS`` times within this many
seconds is not started again (it would only die again)."""
GAVE_UP = "The engine keeps stopping; quit quicmeet and start it again."


class EngineRecovery:
    """Replaces the engine of ``app`` when it dies (the Tk thread)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.recovering = False
        """A new engine is signing in again after the last one died."""
        self._deaths: list[float] = []

    def on_engine_exited(self, event: EngineExited) -> None:
        """The engine died: say so, start a new one, sign in again with the
        saved token and go back into the meeting."""
        app = self.app
        if app.closed:
            return
        log.warning("the engine exited (%s)", event.returncode)
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < QUICK_DEATHS_S] + [now]
        if len(self._deaths) > MAX_QUICK_DEATHS:
            app.notify("Engine stopped", GAVE_UP, "danger")
            app.me = None
            app.show_login(GAVE_UP)
            return
        app.notify(
            "Engine restarted", "The engine stopped; starting it again.", "warning"
        )
        app.meetings.engine_stopped()
        app.link.restart()
        app.frames.reattach()
        if app.me is None:
            return
        self.recovering = True
        if app.main is not None:
            app.main.set_connection(ConnectionState(False, "Starting the engine…"))
        app.controller.resume_saved(
            on_done=self._recovered, on_error=self._not_recovered
        )

    def _recovered(self, signed_in: bool) -> None:
        self.recovering = False
        if not signed_in:
            self._not_recovered(None)
            return
        self.app.chats.reopen()
        self.app.meetings.rejoin()
        self.app.controller.resend()

    def _not_recovered(self, error: BaseException | None) -> None:
        self.recovering = False
        app = self.app
        app.images = ImageStore(app.root, app.controller.render_image)
        app.root.title("quicmeet")
        message = describe(error) if error is not None else ""
        app.show_login(message or "The engine restarted; sign in again.")
