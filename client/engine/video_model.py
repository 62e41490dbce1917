"""The video devices the meeting's pickers list, as the engine found them
(light: the window imports it without the media stack)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VideoDevice", "VideoDeviceList"]


@dataclass(frozen=True, slots=True)
class VideoDevice:
    """A source ``spec`` (``camera:0``, ``screen:1``...) and its ``label``."""

    spec: str
    label: str


@dataclass(frozen=True, slots=True)
class VideoDeviceList:
    """The cameras that opened and the screens mss can capture, in order."""

    cameras: tuple[VideoDevice, ...] = ()
    screens: tuple[VideoDevice, ...] = ()
