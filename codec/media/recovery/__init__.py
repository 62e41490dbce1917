"""Loss recovery for the media plane, per hop and pure: the sender's
retransmit cache, the receiver's NACK generator, and the video frame buffer
that waits for retransmissions until a deadline in time."""

from __future__ import annotations

from .cache import CacheStats, RetransmitCache
from .frame_buffer import FrameBuffer, frame_wait_s
from .nack import NackGenerator, NackStats

__all__ = [
    "CacheStats",
    "FrameBuffer",
    "NackGenerator",
    "NackStats",
    "RetransmitCache",
    "frame_wait_s",
]
