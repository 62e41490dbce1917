"""The video devices of this machine, for the camera and screen pickers:
probed on a worker thread (opening a camera blocks), without opening again
the camera we send."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import NotSignedIn
from ..video_model import VideoDevice, VideoDeviceList

if TYPE_CHECKING:
    from .service import Backend

__all__ = ["video_devices"]


async def video_devices(backend: Backend) -> VideoDeviceList:
    """The cameras that open and the screens that can be captured."""
    try:
        spec = backend.account().meeting.camera_in_use
    except NotSignedIn:
        spec = None
    kind, _, number = (spec or "").partition(":")
    in_use = int(number or 0) if kind == "camera" else None
    return await asyncio.to_thread(_find, in_use)


def _find(in_use: int | None) -> VideoDeviceList:
    from ...media.video_devices import camera_candidates, list_cameras, list_screens

    candidates = camera_candidates()
    if in_use is not None and in_use not in candidates:
        candidates = sorted([*candidates, in_use])
    return VideoDeviceList(
        tuple(VideoDevice(d.spec, d.label) for d in list_cameras(candidates, in_use)),
        tuple(VideoDevice(d.spec, d.label) for d in list_screens()),
    )
