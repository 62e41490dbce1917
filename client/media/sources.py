"""Where local video comes from: the source interface, pacing, the synthetic
pattern, and the ``--video`` spec that picks a source.

A source is driven from one capture thread: :meth:`VideoSource.open` there,
then :meth:`VideoSource.read` in a loop (it blocks until the next frame is due
and returns it as an RGB array of the source's size), then
:meth:`VideoSource.close`. Camera, screen and file sources live in
:mod:`client.media.capture`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from codec.media.stamp import SyntheticPattern

__all__ = [
    "FramePacer",
    "SyntheticSource",
    "VideoSource",
    "parse_video_source",
    "wall_clock_ms",
]


def wall_clock_ms() -> int:
    """Unix time in milliseconds: what the synthetic stamp carries, so that any
    receiver with a synchronised clock can measure glass-to-glass latency."""
    return time.time_ns() // 1_000_000


class VideoSource(Protocol):
    """A stream of RGB frames of a fixed size at a nominal frame rate."""

    width: int
    height: int
    fps: float
    """Nominal frames per second (a live source delivers at its own pace)."""
    stamped: bool
    """The frames carry a picture stamp (:mod:`codec.media.stamp`)."""

    def open(self) -> None:
        """Acquire the device or file; called on the capture thread."""

    def read(self) -> np.ndarray:
        """Block until the next frame is due; return it as ``(height, width, 3)``
        uint8 RGB. Raises :class:`~client.media.errors.SourceError`."""

    def close(self) -> None:
        """Release the device or file; called on the capture thread."""


class FramePacer:
    """Sleeps until each frame is due at ``fps`` frames per second.

    After a stall longer than a frame (a slow encode, a busy machine) the
    schedule restarts from now instead of bursting frames to catch up.
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval = 1.0 / fps
        self._clock = clock
        self._sleep = sleep
        self._due: float | None = None

    def wait(self) -> None:
        """Return when the next frame is due."""
        now = self._clock()
        if self._due is None or now - self._due > self.interval:
            self._due = now
        elif self._due > now:
            self._sleep(self._due - now)
        self._due += self.interval


class SyntheticSource:
    """Test video whose frames carry their number and capture time in a stamp.

    Frame ``n`` (from 0) is :class:`~codec.media.stamp.SyntheticPattern`'s
    picture ``n`` stamped with ``n`` and the Unix time in milliseconds at which
    it was made, so receivers can check every frame they show and measure
    latency from the decoded picture.
    """

    stamped = True

    def __init__(self, width: int, height: int, fps: float, seed: int = 0) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.seed = seed
        self.frames_made = 0
        self._pattern: SyntheticPattern | None = None
        self._pacer = FramePacer(fps)

    def open(self) -> None:
        self._pattern = SyntheticPattern(self.width, self.height, self.seed)

    def read(self) -> np.ndarray:
        assert self._pattern is not None, "open() first"
        self._pacer.wait()
        frame = self._pattern.render(self.frames_made, wall_clock_ms())
        self.frames_made += 1
        return frame

    def close(self) -> None:
        self._pattern = None


def parse_video_source(spec: str, width: int, height: int, fps: float) -> VideoSource:
    """The source a ``--video`` spec names, delivering ``width`` x ``height``.

    - ``synthetic`` or ``synthetic:SEED``: the stamped test pattern at ``fps``;
    - ``camera`` or ``camera:N``: camera number N (OpenCV), default 0;
    - ``screen``, ``screen:N`` (monitor N, default 1: the first) or
      ``screen:LEFT,TOP,WIDTH,HEIGHT`` (a region of the desktop), at ``fps``;
    - ``file:PATH``: anything FFmpeg opens. A regular file plays at its own
      frame rate and loops; a named pipe or a URL (``rtsp://``, ``udp://``...)
      is live and read at the pace it arrives.

    Raises ``ValueError`` for a spec it does not know.
    """
    from .capture import CameraSource, FileSource, ScreenSource

    kind, _, argument = spec.partition(":")
    if kind == "synthetic":
        return SyntheticSource(width, height, fps, seed=_int(argument or "0", spec))
    if kind == "camera":
        return CameraSource(_int(argument or "0", spec), width, height, fps)
    if kind == "screen":
        if "," in argument:
            parts = [_int(p, spec) for p in argument.split(",")]
            if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0:
                raise ValueError(f"screen region must be LEFT,TOP,WIDTH,HEIGHT: {spec}")
            left, top, region_w, region_h = parts
            return ScreenSource(
                width, height, fps, region=(left, top, region_w, region_h)
            )
        return ScreenSource(width, height, fps, monitor=_int(argument or "1", spec))
    if kind == "file" and argument:
        return FileSource(argument, width, height)
    raise ValueError(
        f"unknown video source {spec!r}: use synthetic, camera[:N], "
        "screen[:N|:LEFT,TOP,WIDTH,HEIGHT] or file:PATH"
    )


def _int(text: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a number in video source {spec!r}: {text!r}") from None
