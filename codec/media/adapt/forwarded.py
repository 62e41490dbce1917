"""The SFU's view of one subscriber's path: what to limit publishers to.

The SFU forwards what publishers send; it does not choose the rate of what it
sends a subscriber, so it cannot probe, and an estimate that starts low (as a
sender's does, to probe up from) stays below what the path carries and is
never cut, however long the path's queue stands: a cut that would raise it is
no cut. :class:`ForwardedPath` therefore starts its estimate at its ceiling
(the path is unknown, not slow) and lets congestion cut it. The first cut
goes straight to what the path carried (:data:`~.rate_control.BETA` times
the acknowledged rate), not to half the fictitious start as a later cut
would: a 300 kbit/s path must not wait for three halvings from 4 Mbit/s while
its queue overflows.

Once cut, the path is *constrained* until its estimate is back at the
ceiling: :data:`LIMIT_SHARE` of the estimate is a limit for what is sent to
it. While the publishers follow the limit, the estimate grows as AIMD grows it
(no further than what arrives, times 1.25), so the limit itself probes upward,
and the path's congestion cuts it again. A limit that lapsed two seconds after
the last cut let the publisher return to its own rate and overload the path
every few seconds; one that lapsed ten seconds after it did the same on a
lossy path whose AIMD climbed that long without a cut.

The limit leaves the path a share because a publisher follows it late (the
SFU sends it twice a second; the encoder is retargeted at most once a second
on a small change, and its rate buffer drains after that): followed a second
late, the estimate itself let the bottleneck's queue reach 170-190 ms on the
virtual clock (1.5 Mbit/s, 2% or 5% loss), past the 150 ms at which the SFU
drops whole frames; 85% of it keeps the queue under 150 ms.

Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

from ..feedback import FeedbackPacket
from .estimator import BandwidthEstimator
from .rate_control import BETA

__all__ = ["FORWARDED_MAX_BPS", "LIMIT_SHARE", "ForwardedPath"]

FORWARDED_MAX_BPS = 4_000_000
"""The estimate's ceiling and start (bits per second): the most a client's
own estimate allows it to send."""
LIMIT_SHARE = 0.85
"""The share of a constrained path's estimate that publishers are limited to:
the margin for a publisher that follows the limit up to a second late."""


class ForwardedPath:
    """The estimate of one SFU → subscriber path and the limit it sets."""

    def __init__(self, max_bps: float = FORWARDED_MAX_BPS) -> None:
        self.max_bps = max_bps
        self.estimator = BandwidthEstimator(start_bps=max_bps, max_bps=max_bps)
        """Fed with what the SFU sends (``on_sent``); feedback goes through
        :meth:`on_feedback`."""

    def on_feedback(self, feedback: FeedbackPacket, now: float) -> None:
        """Read the subscriber's feedback about what the SFU sent it."""
        estimator = self.estimator
        rate = estimator.rate
        uncut = rate.decreases == 0
        estimator.on_feedback(feedback, now)
        acked = estimator.acked_bps
        if uncut and rate.decreases and acked is not None:
            rate.set_rate(min(rate.rate_bps, BETA * acked), now)

    def limit_bps(self, now: float) -> float | None:
        """What publishers may send the path (bits per second) while it is
        constrained (cut, and its estimate not back at the ceiling), else
        None."""
        estimator = self.estimator
        if estimator.rate.decreases == 0 or estimator.target_bps >= self.max_bps:
            return None
        return LIMIT_SHARE * estimator.target_bps
