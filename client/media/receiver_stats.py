"""What one remote video track did here: the counters a
:class:`~client.media.receiver.VideoReceiver` keeps, and percentiles for its
report."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["TIMELINE_FRAMES", "ReceiverStats", "percentile"]

TIMELINE_FRAMES = 18_000
"""Pictures the timeline keeps: ten minutes at 30 fps."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values``, None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass(slots=True)
class ReceiverStats:
    """What one remote video track has done here (packets, frames, bytes)."""

    packets_received: int = 0
    bytes_received: int = 0
    """Media payload bytes, headers not counted."""
    frames_received: int = 0
    """Frames reassembled whole."""
    frames_lost: int = 0
    """Frame numbers given up by reassembly."""
    keyframes_received: int = 0
    layer: int | None = None
    """The spatial (simulcast) layer of the last whole frame: 0 the smallest,
    and 0 for a single-layer track."""
    layer_switches: int = 0
    """Whole frames of another spatial layer than the frame before (the SFU
    switched this member's layer)."""
    layer_timeline: list[tuple[float, int]] = field(default_factory=list)
    """(Unix time in seconds, layer) of the first whole frame and of each
    switch (a handful per call)."""
    keyframe_requests: int = 0
    keyframe_requests_to_start: int = 0
    """Those made before the first picture was decoded (how many depends on
    how long the publisher's encoder takes to start, not on losses)."""
    nacks_sent: int = 0
    """NACK datagrams sent for this track."""
    frames_decoded: int = 0
    frames_hidden: int = 0
    """Pictures decoded but not shown because a lost frame damaged them."""
    refresh_recoveries: int = 0
    """Damaged pictures made whole by an intra refresh wave, not a keyframe."""
    frames_discarded: int = 0
    """Frames the decoder dropped while waiting for a keyframe, or rejected."""
    decode_queue_overflows: int = 0
    frames_rendered: int = 0
    stamps_read: int = 0
    stamps_unreadable: int = 0
    """Rendered pictures without an intact stamp (on a stamped stream: corrupt)."""
    stamp_order_errors: int = 0
    """Rendered stamps whose frame number did not grow (shown out of order)."""
    freezes: int = 0
    """Gaps between rendered pictures longer than max(3 frame intervals, 150 ms)."""
    freezes_late_frame: int = 0
    """Freezes ended by a picture put out over a frame interval after its
    playout time (a repair the playout delay did not cover, or decoding that
    fell behind); the others end with a picture on time after pictures that
    never came (frames skipped, or hidden until the decoder recovered)."""
    time_frozen_s: float = 0.0
    """The sum of those gaps, in seconds."""
    latencies_ms: deque[float] = field(
        default_factory=lambda: deque(maxlen=TIMELINE_FRAMES)
    )
    """Glass-to-glass latency of each stamped picture rendered, the last
    :data:`TIMELINE_FRAMES` (a stamped stream runs for hours in a soak test)."""
    timeline: deque[tuple[float, float | None]] = field(
        default_factory=lambda: deque(maxlen=TIMELINE_FRAMES)
    )
    """(Unix time in seconds, glass-to-glass ms or None) of each picture
    rendered, the last :data:`TIMELINE_FRAMES`: latency and freezes over time."""
    first_packet_at: float | None = None
    last_packet_at: float | None = None
    first_render_at: float | None = None
    last_render_at: float | None = None
    width: int = 0
    height: int = 0
