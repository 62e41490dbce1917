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
from collections.abc import Awaitable, Callable

from codec.messages import RoomTrack

from ..rooms import Rooms
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

    async def publish(self, announce: Callable[[], Awaitable[RoomTrack]]) -> None:
        """Start the thread, wait for the source, then ``announce`` the track
        and send as the id the room gave it. When either fails the thread is
        stopped and joined (off the loop) and the error raised: nothing is
        announced for a source that does not work."""
        self.start()
        try:
            await self.wait_started()
            track = await announce()
        except BaseException:
            await self.halt()
            raise
        self.begin(track.track_id)

    async def withdraw(self, rooms: Rooms) -> None:
        """Stop sending, tell the room the track is gone (when it has one and
        the room is still joined) and wait for the thread off the loop."""
        self.stop()
        if self.track_id is not None and rooms.state is not None:
            await rooms.unpublish(self.track_id)
        await self._loop.run_in_executor(None, self.join)

    async def halt(self) -> None:
        """Stop and wait for the thread off the loop."""
        self.stop()
        await self._loop.run_in_executor(None, self.join)

    @abstractmethod
    def join(self) -> None:
        """Wait for the capture thread to end (blocking)."""

    @abstractmethod
    def _run(self) -> None:
        """The capture thread's body."""
