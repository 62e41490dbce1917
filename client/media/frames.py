"""Decoded pictures and the one-slot handoff between decoder and renderer.

A renderer must never fall behind a queue of stale pictures: the decoder puts
each new picture in a :class:`NewestFrame` slot, replacing one not yet taken,
and the renderer takes whatever is newest when it is ready (a render thread
waiting with :meth:`NewestFrame.take`, or a GUI polling :meth:`NewestFrame.peek`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .freeze_log import FrameTrace

__all__ = ["DecodedFrame", "NewestFrame"]


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded picture of a remote track."""

    image: np.ndarray
    """RGB ``(height, width, 3)`` uint8."""
    frame_number: int
    """The track's frame number from the media header (unwrapped)."""
    timestamp: int
    """Capture time on the publisher's 90 kHz media clock (wraps)."""
    keyframe: bool
    decoded_at: float
    """``time.monotonic()`` when decoding finished."""
    late_s: float = 0.0
    """How long after its playout time the picture was put out, in seconds."""
    trace: FrameTrace | None = None
    """What the receiver knew of how the frame came (for the freeze log)."""


class NewestFrame:
    """A slot holding at most one picture: the newest not yet taken.

    Thread-safe. ``replaced`` counts pictures overwritten before anyone took
    them (frames the renderer skipped because it was busy).
    """

    def __init__(self) -> None:
        self._frame: DecodedFrame | None = None
        self._version = 0
        self._taken_version = 0
        self._condition = threading.Condition()
        self._closed = False
        self.replaced = 0

    def put(self, frame: DecodedFrame) -> None:
        with self._condition:
            if self._frame is not None and self._version != self._taken_version:
                self.replaced += 1
            self._frame = frame
            self._version += 1
            self._condition.notify_all()

    def take(self, timeout: float | None = None) -> DecodedFrame | None:
        """Wait up to ``timeout`` s for a picture newer than the last taken one;
        None on timeout or once the slot is closed."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or self._version != self._taken_version, timeout
            )
            if self._closed or self._version == self._taken_version:
                return None
            self._taken_version = self._version
            return self._frame

    def peek(self) -> DecodedFrame | None:
        """The newest picture (taken or not), without waiting."""
        with self._condition:
            return self._frame

    def close(self) -> None:
        """Wake every waiter; :meth:`take` returns None from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
