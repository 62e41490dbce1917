"""Loss recovery for the media plane, per hop and pure: the sender's
retransmit cache, the receiver's NACK generator, the video frame buffer
that waits for retransmissions until a deadline in time, and the playout
delay that shows every frame on an even cadence despite the repairs."""

from __future__ import annotations

from .cache import (
    EVICTION_SLACK_S,
    REPAIR_COPIES,
    REPEAT_WINDOW_S,
    CacheStats,
    RetransmitCache,
)
from .frame_buffer import FrameBuffer, frame_wait_s
from .nack import NACK_COPY_DELAY_S, Arrival, NackGenerator, NackStats, Recovery
from .playout import PlayoutDelay

__all__ = [
    "EVICTION_SLACK_S",
    "REPAIR_COPIES",
    "REPEAT_WINDOW_S",
    "NACK_COPY_DELAY_S",
    "Arrival",
    "CacheStats",
    "FrameBuffer",
    "NackGenerator",
    "NackStats",
    "PlayoutDelay",
    "Recovery",
    "RetransmitCache",
    "frame_wait_s",
]
