"""Frames a video source skips so that what its encoder makes does not
outrun its budget, above all a cut one.

x264 does not follow a lower target at once: its rate control spends for a
while what it saved below the old target, and the correction for its
undershoot (:class:`~codec.media.adapt.EncoderCorrection`) is measured
again only after a second. After RFC 8867's drop from 2.5 to 0.6 Mbit/s the
media kept sending about the capacity (1.2-1.4 times the cut estimate) for
a second and more, so the bottleneck's queue stayed full after the
estimate had been cut below the capacity. The pacer releases at 1.5 times
the estimate and only skipped frames once that fell behind.

:class:`OutputBudget` is a token bucket at the budget: it holds at most
:data:`BURST_S` of it (x264's frame-to-frame noise), and a drop empties
it, so that the encoder makes no more than its budget over any fraction of
a second, and from a drop on no more than the new budget. A frame that
would exceed it is not even encoded (a lower frame rate, as the design
asks, never a backlog). Pure: every call takes ``now``.
"""

from __future__ import annotations

__all__ = ["BURST_S", "CUT", "QUEUE_EMPTIES_S", "TIGHT_BURST_S", "OutputBudget"]

BURST_S = 0.15
"""Seconds of the budget the bucket holds at most: x264's frame-to-frame
noise passes (an encoder that makes its budget with +-40% per frame skips
1-2% of the frames, one that makes 90% of it none) and a keyframe of five
frames' worth costs at most a frame. More is more queue at the bottleneck
whenever x264 overshoots: with a quarter second, at 0.6 Mbit/s, the
encoder made 1.3-2 times its budget for 0.3-0.8 s at a time (150 kbit of
queue, glass-to-glass p95 of 190-244 ms), and with half a second it spent
250 kbit at once after the drop."""
TIGHT_BURST_S = 0.05
"""What the bucket holds at most while the budget is *tight*: the estimate
held just under a capacity the path has shown (``AimdRateControl``'s
ceiling, 95% of it). There 0.15 s of saved budget is about 140 ms of
queue at 0.6 Mbit/s: in RFC 8867's 0.6 Mbit/s phase x264 released about
1.25 times a held 555 kbit/s for half a second and the picture went from
93 to 175 ms before the delay detector cut. A frame and a half lets
x264's frame-to-frame noise pass and skips the frames of a burst."""
CUT = 0.75
"""A budget under this fraction of the last one is a cut that empties the
bucket: a capacity drop (the estimate's cuts after RFC 8867's drop were to
0.54, 0.5 and 0.86 of the rate before), where every bit over the budget
stays in a full queue. AIMD's sawtooth (cuts to 0.85 of what arrived, about
0.85-0.9 of the rate) leaves it: there the queue is 30-60 ms, and skipping
frames after each of its cuts took the 1 Mbit/s phase's use from 0.85-0.88
to 0.81."""

QUEUE_EMPTIES_S = 0.015
"""A smaller decrease empties the bucket too when the path's standing queue
(the delay no packet escaped lately, ``BandwidthEstimator.standing_queue_s``)
is this much or more: then every bit over the new budget stays in that
queue. After a sawtooth cut of RFC 8867's 0.6 Mbit/s phase (645 to 496
kbit/s, 0.77 of it, with 17-23 ms standing) the bucket's 0.15 s of the old
budget and x264's second to follow a new target kept the media at 555-680
kbit/s for a second: the queue reached 68 ms and the picture 206 ms. The
sawtooth's other cuts found 5-7 ms standing, where the bucket stays (see
:data:`CUT`)."""


class OutputBudget:
    """What an encoder may still make (bits), refilled at its budget."""

    def __init__(self) -> None:
        self.budget_bps: float | None = None
        self.tokens_bits = 0.0
        self._at: float | None = None
        self._burst_s = BURST_S

    def _refill(self, now: float) -> None:
        if self._at is not None and self.budget_bps is not None:
            elapsed = max(0.0, now - self._at)
            self.tokens_bits = min(
                self.tokens_bits + self.budget_bps * elapsed,
                self.budget_bps * self._burst_s,
            )
        self._at = now

    def on_budget(
        self, budget_bps: float, now: float, queue_s: float = 0.0, tight: bool = False
    ) -> None:
        """The budget (bits per second) from ``now`` on; a cut empties what
        the bucket held, as does any decrease while the path's standing
        queue (``queue_s``, seconds) is :data:`QUEUE_EMPTIES_S` or more.
        A ``tight`` budget (held just under the path's capacity) keeps at
        most :data:`TIGHT_BURST_S` of it."""
        self._refill(now)
        self._burst_s = TIGHT_BURST_S if tight else BURST_S
        self.tokens_bits = min(self.tokens_bits, budget_bps * self._burst_s)
        last = self.budget_bps
        if last is None:
            self.tokens_bits = budget_bps * self._burst_s
        elif budget_bps < CUT * last or (
            budget_bps < last and queue_s >= QUEUE_EMPTIES_S
        ):
            self.tokens_bits = min(self.tokens_bits, 0.0)
        self.budget_bps = budget_bps

    def allows(self, now: float) -> bool:
        """Whether a frame may be encoded at ``now`` (no budget: always)."""
        self._refill(now)
        return self.budget_bps is None or self.tokens_bits >= 0

    def on_frame(self, bits: int) -> None:
        """An encoded frame of ``bits`` left the encoder."""
        self.tokens_bits -= bits
