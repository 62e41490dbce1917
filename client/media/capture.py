"""Video sources backed by devices and files: camera (OpenCV), screen (mss) and
anything FFmpeg opens (PyAV). Each follows :class:`client.media.sources.VideoSource`
and delivers RGB frames scaled to the size it was given."""

from __future__ import annotations

import os
import stat
import time

import av
import cv2
import numpy as np

from .errors import SourceError
from .sources import FramePacer

__all__ = ["CameraSource", "FileSource", "ScreenSource"]


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an RGB image to ``width`` x ``height`` (area averaging when shrinking,
    which keeps small text legible)."""
    if image.shape[1] == width and image.shape[0] == height:
        return np.ascontiguousarray(image)
    shrinking = image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


class CameraSource:
    """Camera number ``index`` through OpenCV, paced by the camera itself."""

    stamped = False

    def __init__(self, index: int, width: int, height: int, fps: float) -> None:
        self.index = index
        self.width = width
        self.height = height
        self.fps = fps
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open camera {self.index}")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        self._capture = capture

    def read(self) -> np.ndarray:
        assert self._capture is not None, "open() first"
        ok, bgr = self._capture.read()
        if not ok:
            raise SourceError(f"camera {self.index} stopped delivering frames")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return _fit(rgb, self.width, self.height)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class ScreenSource:
    """A monitor (``monitor``, 1 for the first; 0 is all of them) or a desktop
    region ``(left, top, width, height)`` through mss, at ``fps``."""

    stamped = False

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        monitor: int = 1,
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.monitor = monitor
        self.region = region
        self._grabber: object | None = None
        self._area: dict[str, int] = {}
        self._pacer = FramePacer(fps)

    def open(self) -> None:
        import mss
        import mss.exception

        try:
            grabber = mss.MSS()
        except mss.exception.ScreenShotError as exc:
            raise SourceError(f"cannot capture the screen: {exc}") from None
        if self.region is not None:
            left, top, width, height = self.region
            self._area = {"left": left, "top": top, "width": width, "height": height}
        else:
            monitors = grabber.monitors
            if not 0 <= self.monitor < len(monitors):
                grabber.close()
                raise SourceError(
                    f"no monitor {self.monitor}: this desktop has "
                    f"{len(monitors) - 1} (0 means all of them)"
                )
            self._area = dict(monitors[self.monitor])
        self._grabber = grabber

    def read(self) -> np.ndarray:
        import mss.exception

        assert self._grabber is not None, "open() first"
        self._pacer.wait()
        try:
            shot = self._grabber.grab(self._area)  # type: ignore[attr-defined]
        except mss.exception.ScreenShotError as exc:
            raise SourceError(f"screen capture failed: {exc}") from None
        rgb = cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2RGB)
        return _fit(rgb, self.width, self.height)

    def close(self) -> None:
        if self._grabber is not None:
            self._grabber.close()  # type: ignore[attr-defined]
            self._grabber = None


def is_live(location: str) -> bool:
    """Whether ``location`` is read as it arrives (a URL, a named pipe, a
    device) rather than played at its own frame rate from a file."""
    if "://" in location:
        return True
    try:
        mode = os.stat(location).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


class FileSource:
    """The first video stream of anything FFmpeg opens, through PyAV.

    A file plays at its own frame rate and loops at its end; a live source (a
    URL, or a named pipe another program writes, such as a Y4M stream) is read
    at the pace it arrives and ends the track when it ends. ``fps`` is the
    stream's average rate once opened (30 when it does not say).
    """

    stamped = False

    def __init__(self, location: str, width: int, height: int) -> None:
        self.location = location
        self.width = width
        self.height = height
        self.fps = 30.0
        self.live = is_live(location)
        self._container: av.container.InputContainer | None = None
        self._frames: object = iter(())
        self._started_at = 0.0
        self._offset_s = 0.0
        self._origin_s: float | None = None
        self._last_time_s = 0.0

    def open(self) -> None:
        try:
            container = av.open(self.location, mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open {self.location}: {exc}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.location} has no video stream")
        stream = container.streams.video[0]
        if stream.average_rate:
            self.fps = float(stream.average_rate)
        self._container = container
        self._frames = container.decode(stream)
        self._started_at = time.monotonic()

    def read(self) -> np.ndarray:
        container = self._container
        assert container is not None, "open() first"
        while True:
            try:
                frame = next(self._frames)  # type: ignore[call-overload]
                break
            except StopIteration:
                if self.live:
                    raise SourceError(f"{self.location} ended") from None
                self._rewind(container)
            except av.FFmpegError as exc:
                raise SourceError(f"cannot read {self.location}: {exc}") from None
        if not self.live:
            self._wait_until_due(frame)
        return frame.reformat(
            width=self.width, height=self.height, format="rgb24"
        ).to_ndarray()

    def _rewind(self, container: av.container.InputContainer) -> None:
        stream = container.streams.video[0]
        self._offset_s += self._last_time_s + 1.0 / self.fps
        self._last_time_s = 0.0
        try:
            container.seek(0, stream=stream)
        except av.FFmpegError as exc:
            raise SourceError(f"cannot loop {self.location}: {exc}") from None
        self._frames = container.decode(stream)

    def _wait_until_due(self, frame: av.VideoFrame) -> None:
        if frame.time is None:
            relative_s = self._last_time_s + 1.0 / self.fps
        else:
            if self._origin_s is None:
                self._origin_s = frame.time
            relative_s = max(0.0, frame.time - self._origin_s)
        self._last_time_s = relative_s
        delay = self._started_at + self._offset_s + relative_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
