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
brings it down without visible jumps.

**A queue is not jitter.** A repair makes one frame late and holds the few
behind it: a run of late frames as long as a round trip. A queue that builds
at a bottleneck (the capacity fell) makes every frame late for as long as it
stands, and once it drains the frames are on time again: its lateness says
nothing about the next frames, and covering it for ``window_s`` kept the
picture up to ``max_delay_s`` behind for seconds after the path had
recovered. So a run of frames each later than ``tolerance_s`` that lasts
``queue_run_s`` (longer than any repair the cap could cover) is taken for a
queue: its frames leave the quantile, and while it lasts the delay covers
only what the frames of its last ``QUEUE_FOLLOW_S`` needed (a path whose
every frame is late, a jittery one among them, stays covered). From then
until it reaches its target the delay comes down by up to ``queue_decay`` of
a frame interval per frame, following the queue as it drains (the drained
frames arrive faster than their cadence).
As libwebrtc's video timing lets its delay fall by up to 100 ms a second,
and NetEQ measures a packet's delay against the fastest of the last 2 s, not
of the whole call. Pure: the caller passes ``now`` (seconds on its own clock)
and the frames' 90 kHz capture timestamps.
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
QUEUE_RUN_S = 0.5
"""A run of late frames this long (capture time) is a queue, not a repair: a
repair's run lasts about its round trip, and one longer than the cap and the
tolerance together (170 ms) is not covered anyway."""
QUEUE_MIN_LATE_S = 0.005
"""Frames later than the tolerance and than this make a run (a frame the
timestamps' rounding made a few microseconds late does not)."""
QUEUE_FOLLOW_S = 0.25
"""In a queue, the delay covers the latest of the frames of this last span."""
QUEUE_DECAY = 0.5
"""In a queue, the delay shrinks by up to this fraction of the frame interval
per frame (the frames are late already; a drain delivers them faster than
their cadence)."""


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
        queue_run_s: float = QUEUE_RUN_S,
        queue_decay: float = QUEUE_DECAY,
    ) -> None:
        self.max_delay_s = max_delay_s
        self.tolerance_s = tolerance_s
        self.window_s = window_s
        self.quantile = quantile
        self.decay = decay
        self.queue_run_s = queue_run_s
        self.queue_decay = queue_decay
        self.initial_delay_s = min(initial_delay_s, max_delay_s)
        self.delay_s = self.initial_delay_s
        """The delay in force above the fastest transit, in seconds."""
        self._first_frame_at: float | None = None
        self._unwrapper = Unwrapper(32)
        self._base = windowed_min(BASE_WINDOW_S, 10)
        self._recent: deque[tuple[float, float, int]] = deque()
        """(time ready, lateness above the base, run) of the last
        ``window_s``, but for the frames of a queue; run -1: on time."""
        self._last_capture_s: float | None = None
        self._runs = 0
        self._queue_run = 0
        """The last run taken for a queue (its frames left ``_recent`` then)."""
        self._run_started_s: float | None = None
        """Capture time of the first frame of the current run of late frames."""
        self._run_follow: deque[tuple[float, float]] = deque()
        """(time ready, lateness) of the current run's last ``QUEUE_FOLLOW_S``."""
        self._after_queue = False
        """A queue was seen and the delay has not yet come down to its target
        since: it shrinks by ``queue_decay``."""
        self.queues = 0
        """Runs of late frames taken for a queue."""

    def on_frame(self, timestamp: int, now: float) -> None:
        """Frame of capture ``timestamp`` is ready to decode at ``now``."""
        capture = self._capture_s(timestamp)
        transit = now - capture
        self._base.update(transit, now)
        base = self._base.value
        assert base is not None
        late = transit - base
        in_queue = self._track_run(capture, late, now)
        recent = self._recent
        if not in_queue:
            run = self._runs if self._run_started_s is not None else -1
            recent.append((now, late, run))
        while recent and recent[0][0] < now - self.window_s:
            recent.popleft()
        ordered = sorted(item[1] for item in recent)
        lateness = ordered[int(self.quantile * (len(ordered) - 1))] if ordered else 0.0
        if in_queue:
            lateness = max(lateness, max(item[1] for item in self._run_follow))
        target = min(self.max_delay_s, max(0.0, lateness - self.tolerance_s))
        if self._first_frame_at is None:
            self._first_frame_at = now
        if now - self._first_frame_at < self.window_s:
            target = max(target, self.initial_delay_s)
        last = self._last_capture_s
        interval = 0.0 if last is None else max(0.0, capture - last)
        self._last_capture_s = capture if last is None else max(last, capture)
        if in_queue:
            self._after_queue = True
        decay = self.queue_decay if self._after_queue else self.decay
        if target >= self.delay_s:
            self.delay_s = target
            self._after_queue = in_queue
        else:
            self.delay_s = max(target, self.delay_s - decay * interval)

    def _track_run(self, capture: float, late: float, now: float) -> bool:
        """Follow the run of late frames; True while it is taken for a queue
        (its frames are then out of the quantile)."""
        follow = self._run_follow
        if late <= max(self.tolerance_s, QUEUE_MIN_LATE_S):
            self._run_started_s = None
            follow.clear()
            return False
        if self._run_started_s is None:
            self._run_started_s = capture
            self._runs += 1
        follow.append((now, late))
        while follow[0][0] < now - QUEUE_FOLLOW_S:
            follow.popleft()
        if capture - self._run_started_s < self.queue_run_s:
            return False
        run = self._runs
        if run != self._queue_run:
            self._queue_run = run
            self.queues += 1
            self._recent = deque(item for item in self._recent if item[2] != run)
        return True

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
