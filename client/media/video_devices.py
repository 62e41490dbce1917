"""Which video devices this machine has: cameras that actually open (OpenCV)
and the monitors mss can capture, each as a source spec of
:func:`client.media.sources.parse_video_source` and a name for people.

Probing opens each camera for a moment: call it off the event loop, and not
for a camera that is in use.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VideoDeviceInfo", "camera_candidates", "list_cameras", "list_screens"]

PROBED_INDICES = range(4)
"""Camera numbers tried where the system does not list its devices."""
V4L_DEVICES = Path("/dev")
V4L_NAMES = Path("/sys/class/video4linux")


@dataclass(frozen=True, slots=True)
class VideoDeviceInfo:
    """A source ``spec`` (``camera:0``, ``screen:1``...) and its ``label``."""

    spec: str
    label: str


def camera_candidates() -> list[int]:
    """The camera numbers worth trying: on Linux those of ``/dev/videoN``
    (none when there is no such device), elsewhere the first few."""
    if not sys.platform.startswith("linux"):
        return list(PROBED_INDICES)
    found = []
    for path in V4L_DEVICES.glob("video*"):
        match = re.fullmatch(r"video(\d+)", path.name)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def _camera_name(index: int) -> str:
    try:
        name = (V4L_NAMES / f"video{index}" / "name").read_text().strip()
    except OSError:
        name = ""
    return f"{name} (camera {index})" if name else f"Camera {index}"


def list_cameras(
    candidates: list[int] | None = None, in_use: int | None = None
) -> list[VideoDeviceInfo]:
    """The cameras among ``candidates`` (default :func:`camera_candidates`)
    that open and deliver a picture; a metadata node or a camera another
    program holds is left out. Camera ``in_use`` (ours, sending) is listed
    without being opened a second time."""
    import cv2

    cameras = []
    for index in camera_candidates() if candidates is None else candidates:
        if index == in_use:
            cameras.append(VideoDeviceInfo(f"camera:{index}", _camera_name(index)))
            continue
        capture = cv2.VideoCapture(index)
        try:
            works = capture.isOpened() and capture.read()[0]
        finally:
            capture.release()
        if works:
            cameras.append(VideoDeviceInfo(f"camera:{index}", _camera_name(index)))
    return cameras


def list_screens() -> list[VideoDeviceInfo]:
    """The monitors mss can capture, first to last, and all of them together
    when there are several; empty when the screen cannot be captured."""
    import mss
    import mss.exception

    try:
        with mss.MSS() as grabber:
            monitors = list(grabber.monitors)
    except mss.exception.ScreenShotError:
        return []
    screens = [
        VideoDeviceInfo(
            f"screen:{number}",
            f"Screen {number} · {monitor['width']}×{monitor['height']}",
        )
        for number, monitor in enumerate(monitors[1:], start=1)
    ]
    if len(screens) > 1:
        whole = monitors[0]
        screens.append(
            VideoDeviceInfo(
                "screen:0", f"All screens · {whole['width']}×{whole['height']}"
            )
        )
    return screens
