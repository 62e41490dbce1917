"""How large we show each remote video track, told to the server.

The SFU forwards a subscriber no simulcast layer larger than its view of the
track needs (``ViewTrack``, ``docs/protocol.md``; the rule in
``docs/media.md`` section 7). :class:`TrackViews` keeps the size each
remote track is shown at (a default for every track, as the CLI's
``--view-size``, and one per track, as the desktop app's tiles) and tells
the server what changed, :data:`DEBOUNCE_S` after the last change of a
track's size, so that dragging a window's edge sends one message, not one
per pixel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from ..errors import ClientError

__all__ = ["DEBOUNCE_S", "TrackViews"]

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.3
"""A track's size is sent this long (seconds) after it last changed."""


class _Rooms(Protocol):
    async def view_track(self, track_id: int, width: int, height: int) -> None: ...


class TrackViews:
    """The size each remote video track is shown at, and what the server
    was told of it. ``default`` (width, height in pixels; None: no limit)
    applies to every track not given its own; ``spawn`` runs a coroutine on
    the loop."""

    def __init__(
        self,
        rooms: _Rooms,
        loop: asyncio.AbstractEventLoop,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        default: tuple[int, int] | None = None,
    ) -> None:
        if default is not None and (default[0] <= 0 or default[1] <= 0):
            raise ValueError(f"a view is at least 1x1 pixels, not {default}")
        self.rooms = rooms
        self.default = default
        self._loop = loop
        self._spawn = spawn
        self._wanted: dict[int, tuple[int, int]] = {}
        """Track id → the size it is shown at (its own, not the default)."""
        self._told: dict[int, tuple[int, int]] = {}
        """Track id → the size the server was told ((0, 0): no limit)."""
        self._pending: dict[int, asyncio.TimerHandle] = {}

    def set(self, track_id: int, width: int, height: int) -> None:
        """Track ``track_id`` is now shown at ``width`` x ``height`` pixels
        (0 x 0: no limit); the server hears of it :data:`DEBOUNCE_S` later."""
        if width < 0 or height < 0 or (width == 0) != (height == 0):
            raise ValueError(f"not a view size: {width}x{height}")
        self._wanted[track_id] = (width, height)
        pending = self._pending.pop(track_id, None)
        if pending is not None:
            pending.cancel()
        self._pending[track_id] = self._loop.call_later(
            DEBOUNCE_S, self._send, track_id
        )

    def sync(self, track_ids: Iterable[int]) -> None:
        """The remote video tracks now in the room: tell the server the
        default view of a new one, forget those gone."""
        present = set(track_ids)
        for gone in (self._wanted.keys() | self._told.keys()) - present:
            self._wanted.pop(gone, None)
            self._told.pop(gone, None)
            pending = self._pending.pop(gone, None)
            if pending is not None:
                pending.cancel()
        if self.default is None:
            return
        for track_id in present:
            if track_id not in self._told and track_id not in self._pending:
                self._send(track_id)

    def close(self) -> None:
        """Send nothing more."""
        for pending in self._pending.values():
            pending.cancel()
        self._pending.clear()

    def _send(self, track_id: int) -> None:
        self._pending.pop(track_id, None)
        size = self._wanted.get(track_id, self.default or (0, 0))
        if self._told.get(track_id) == size:
            return
        self._told[track_id] = size
        self._spawn(self._tell(track_id, size))

    async def _tell(self, track_id: int, size: tuple[int, int]) -> None:
        try:
            await self.rooms.view_track(track_id, *size)
        except ClientError as exc:
            # The track may have gone meanwhile: the view goes with it.
            log.info("view of track %d not taken: %s", track_id, exc)
