"""When to show each video frame: at its capture time plus one playout delay.

A receiver that shows each frame as soon as it is whole shows most frames at
once and stalls on the one a retransmission repairs: that frame comes a round
trip late, the frames behind it wait for it in the frame buffer, and the
picture freezes for the whole repair. As WebRTC's video jitter buffer does,
:class:`PlayoutDelay` instead schedules every frame at ``capture time + base +
delay``:

- ``base`` is the lowest transit (local time when the frame was ready minus
  its capture time) of the recent frames: the fastest path through encoder,
  network and reassembly, clock offset included;
- ``delay`` covers how much later than that the recent frames were ready (the
  ``quantile`` of the last ``window_s``): a repair costs one NACK round trip on
  whichever hop lost the packet (the publisher's or this receiver's), and a
  frame it repaired is shown in its turn, the cadence even. Less
  ``tolerance_s``: a frame shown that much after its turn makes a hitch of
  about three frame intervals, not a freeze, and covering it would delay
  every frame as much. Capped at ``max_delay_s``, so the latency stays
  bounded whatever the network does; a frame later than that is shown late,
  but by less than its repair took.

Until ``window_s`` of frames have been seen there is nothing to take a
quantile of, and the first repair would find no delay at all: a freeze in
the first seconds of nearly every call on a lossy link. For that time the
delay is at least ``initial_delay_s``, the caller's guess at what a repair
costs (a round trip of its own hop, with the frame interval during which the
gap is not yet seen, less ``tolerance_s``; :meth:`set_initial_delay`).

The delay follows increases at once (one longer gap, then an even cadence) and
decreases by at most ``decay`` of a frame interval per frame, so a calm network
brings it down without visible jumps. Pure: the caller passes ``now`` (seconds
on its own clock) and the frames' 90 kHz capture timestamps.
"""

from __future__ import annotations

from collections import deque

from ..cc.windowed import windowed_min
from ..seqnum import Unwrapper

__all__ = ["PlayoutDelay"]

CLOCK_HZ = 90_000
"""The video timestamps' clock (``codec.media.video.VIDEO_CLOCK_HZ``, not
imported: that module loads PyAV, and this one is pure arithmetic)."""
BASE_WINDOW_S = 10.0
"""Seconds the lowest transit is remembered: long enough to keep a fast frame
seen before a spell of queueing, short enough to follow a path that changes."""
LATENESS_WINDOW_S = 4.0
"""Seconds of frames whose lateness sets the delay: several repairs at 1-5 %
loss."""
QUANTILE = 0.98
"""The share of those frames the delay covers: a repair holds its frame and
the few behind it (several per cent of the frames at 2 % loss), while the
odd frame a stalled host held is among the one in fifty left out."""
TOLERANCE_S = 0.05
"""How late after its turn a repaired frame may be shown: the gap before it is
then about 85 ms at 30 fps, under what reads as a freeze (150 ms) with room
for the host's own jitter."""
MAX_DELAY_S = 0.12
"""The delay never exceeds this: beyond it the picture lags more than a
repaired frame is worth."""
DECAY = 0.05
"""Fraction of the frame interval by which the delay shrinks at each frame."""


class PlayoutDelay:
    """The playout schedule of one video track.

    Call :meth:`on_frame` when a frame is ready to decode (whole, in order),
    then :meth:`render_time` for when to show it. Times are seconds,
    timestamps the 32-bit 90 kHz capture clock of the media header.
    """

    def __init__(
        self,
        *,
        max_delay_s: float = MAX_DELAY_S,
        tolerance_s: float = TOLERANCE_S,
        window_s: float = LATENESS_WINDOW_S,
        quantile: float = QUANTILE,
        decay: float = DECAY,
        initial_delay_s: float = 0.0,
    ) -> None:
        self.max_delay_s = max_delay_s
        self.tolerance_s = tolerance_s
        self.window_s = window_s
        self.quantile = quantile
        self.decay = decay
        self.initial_delay_s = min(initial_delay_s, max_delay_s)
        self.delay_s = self.initial_delay_s
        """The delay in force above the fastest transit, in seconds."""
        self._first_frame_at: float | None = None
        self._unwrapper = Unwrapper(32)
        self._base = windowed_min(BASE_WINDOW_S, 10)
        self._recent: deque[tuple[float, float]] = deque()
        """(time ready, lateness above the base) of the last ``window_s``."""
        self._last_capture_s: float | None = None

    def on_frame(self, timestamp: int, now: float) -> None:
        """Frame of capture ``timestamp`` is ready to decode at ``now``."""
        capture = self._capture_s(timestamp)
        transit = now - capture
        self._base.update(transit, now)
        base = self._base.value
        assert base is not None
        recent = self._recent
        recent.append((now, transit - base))
        while recent[0][0] < now - self.window_s:
            recent.popleft()
        ordered = sorted(late for _, late in recent)
        lateness = ordered[int(self.quantile * (len(ordered) - 1))]
        target = min(self.max_delay_s, max(0.0, lateness - self.tolerance_s))
        if self._first_frame_at is None:
            self._first_frame_at = now
        if now - self._first_frame_at < self.window_s:
            target = max(target, self.initial_delay_s)
        last = self._last_capture_s
        interval = 0.0 if last is None else max(0.0, capture - last)
        self._last_capture_s = capture if last is None else max(last, capture)
        if target >= self.delay_s:
            self.delay_s = target
        else:
            self.delay_s = max(target, self.delay_s - self.decay * interval)

    def set_initial_delay(self, delay_s: float) -> None:
        """The delay (seconds, capped) to hold until ``window_s`` of frames
        have been seen: what a repair is expected to cost, less the
        tolerance. Set it as soon as the round trip is known."""
        self.initial_delay_s = min(max(0.0, delay_s), self.max_delay_s)
        if self._first_frame_at is None:
            self.delay_s = self.initial_delay_s

    def render_time(self, timestamp: int) -> float:
        """When to show the frame of capture ``timestamp``, on the clock of
        ``now``; call :meth:`on_frame` for it first."""
        base = self._base.value
        if base is None:
            raise ValueError("render_time() before any on_frame()")
        return self._capture_s(timestamp) + base + self.delay_s

    def _capture_s(self, timestamp: int) -> float:
        return self._unwrapper.unwrap(timestamp) / CLOCK_HZ
