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

Once cut, the path is *constrained*: the estimate is a limit for what is sent
to it until :data:`CONSTRAINED_S` after the last cut. While the publishers
follow the limit, the estimate grows as AIMD grows it (no further than what
arrives, times 1.25), so the limit itself probes upward, and the path's
congestion cuts it again. A limit that lapsed two seconds after the last cut
let the publisher return to its own rate and overload the path every few
seconds.

Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

from ..feedback import FeedbackPacket
from .estimator import BandwidthEstimator
from .rate_control import BETA

__all__ = ["CONSTRAINED_S", "FORWARDED_MAX_BPS", "ForwardedPath"]

FORWARDED_MAX_BPS = 4_000_000
"""The estimate's ceiling and start (bits per second): the most a client's
own estimate allows it to send."""
CONSTRAINED_S = 10.0
"""How long (seconds) after its last cut a path's estimate limits what is
sent to it: long enough that AIMD's growth meets the path's capacity again
(and is cut) before the limit lapses."""


class ForwardedPath:
    """The estimate of one SFU → subscriber path and the limit it sets."""

    def __init__(self, max_bps: float = FORWARDED_MAX_BPS) -> None:
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
        """The most the path takes (bits per second) while it is constrained
        (cut in the last :data:`CONSTRAINED_S`), else None."""
        if now - self.estimator.rate.decreased_at >= CONSTRAINED_S:
            return None
        return self.estimator.target_bps
