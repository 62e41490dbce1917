"""The thread plumbing every local track's sender shares: a capture thread
that opens the source, a future the loop awaits for that outcome, and an event
that holds capture back until the server has assigned the track id.

:class:`~client.media.sender.VideoSender` and
:class:`~client.media.audio_sender.AudioSender` build on it; each keeps its
own ``_run`` (open the source, set ``_opened``, wait on ``_track_ready``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from abc import ABC, abstractmethod

from .errors import SourceError


class TrackSender(ABC):
    """Start, wait for the source, begin, retarget and stop a sender thread.

    ``media`` names the source in the error :meth:`wait_started` raises
    ("audio", "video"); ``thread_name`` names the capture thread.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, media: str, thread_name: str
    ) -> None:
        self.track_id: int | None = None
        self._loop = loop
        self._media = media
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._track_ready = threading.Event()

    def start(self) -> None:
        """Start the capture thread, which opens the source; returns at once."""
        self._thread = threading.Thread(
            target=self._run, name=self._thread_name, daemon=True
        )
        self._thread.start()

    async def wait_started(self, timeout: float = 10.0) -> None:
        """Wait until the source is open; raises its error (a
        :class:`SourceError`, or :class:`~client.media.errors.AudioUnavailable`)
        when it failed, or :class:`SourceError` when it took longer than
        ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._opened), timeout)
        except TimeoutError:
            raise SourceError(
                f"the {self._media} source did not open in {timeout:g} s"
            ) from None

    def begin(self, track_id: int) -> None:
        """Capture and send as ``track_id`` (once the source is open)."""
        self.track_id = track_id
        self._track_ready.set()

    def retarget(self, track_id: int) -> None:
        """Send as ``track_id`` from the next frame on (after the server
        re-announced the track, e.g. on a new connection)."""
        self.track_id = track_id

    def stop(self) -> None:
        """Stop capturing and sending (returns at once; ``join`` waits)."""
        self._stopping.set()
        self._track_ready.set()

    @abstractmethod
    def _run(self) -> None:
        """The capture thread's body."""
