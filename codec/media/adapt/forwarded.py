"""The SFU's view of one subscriber's path: what to limit publishers to.

The SFU forwards what publishers send; it does not choose the rate of what it
sends a subscriber. So an unknown path is not invited to take what publishers
may send: :class:`ForwardedPath` starts its estimate at
:data:`FORWARDED_START_BPS` and limits publishers to :data:`LIMIT_SHARE` of
the estimate from the start. While they follow the limit, the estimate grows
as AIMD grows it (8% a second, to at most 1.25 times what arrives), and the
path's congestion cuts it (at most by half per round trip). Once the
estimate reaches :data:`FORWARDED_MAX_BPS` the path limits nobody.

Growth with what arrives alone is slow, and it stalls where publishers send
less than their limit (an encoder that undershoots, a publisher held back by
its own path): the limit then stays near what they sent, and when their own
path recovers it holds them back for many seconds (8% a second from 0.5 to
1 Mbit/s is nine). So while the path limits anyone the SFU probes it
(:meth:`ForwardedPath.probes`): one cluster at :data:`FIRST_PROBE_MULTIPLIER`
times the estimate when it first limits, further ones at twice what a
cluster found while they keep finding more, and, while publishers send
less than :data:`APP_LIMITED` of the limit and the path is calm, one at
twice the estimate every few seconds, as a client's hop does
(:mod:`.probe`). A path that carries them opens in about a second. A path
that publishers fill gets no such probe: there AIMD finds its capacity, and
a probe at twice the estimate every few seconds would only queue and cut
(on the virtual clock, a 1 Mbit/s path so probed was cut after every
probe). But once AIMD holds at the ceiling of the capacity it knows, only a
probe can show that the capacity rose: publishers held to the limit never
send more than the path carried, so what arrives never shows more. Such a
path gets the client's gentle probe (a short cluster at
:data:`~.estimator.CEILING_PROBE` times the estimate every few seconds,
whose own queue cuts nothing); before it, a 300 kbit/s subscriber path
that rose to 2.5 Mbit/s kept its 290 kbit/s estimate, and its subscriber
the lowest simulcast layer, for good.

Measured before (``bench/loss.py``, one member behind 1.5 Mbit/s with loss):
an estimate that started at its 4 Mbit/s ceiling and waited for congestion
let the clean-side publisher send 2 Mbit/s into the path for the first
seconds, until the SFU's queue to it passed 150 ms and whole frames were
dropped; and its first cut, to 0.85 times what had arrived while that
publisher was still starting, once left the limit at 99 kbit/s, from which
8% a second took the rest of the run.

The limit leaves the path a share because a publisher follows it late (the
SFU sends it twice a second; the encoder is retargeted at most once a second
on a small change, and its rate buffer drains after that): followed a second
late, the estimate itself let the bottleneck's queue reach 170-190 ms on the
virtual clock (1.5 Mbit/s, 2% or 5% loss), past the 150 ms at which the SFU
drops whole frames; 85% of it keeps the queue under 150 ms.

The start estimate is a guess; the first probe's result is the first
measure of the path. A result under it lowers the estimate to what the
probe found (:data:`~.estimator.PROBE_PLAUSIBILITY` of it, as a result over
it lifts it), so a slow path is not offered 1 Mbit/s until congestion cuts
it: before, a 300 kbit/s subscriber of a simulcast track was sent the top
layer and froze 1.24 s until its first cut. :attr:`ForwardedPath.measured`
says whether anything was measured yet (a probe's result or a cut), and
:meth:`ForwardedPath.probe_for` probes for a limit a subscriber would use
(its next simulcast layer), which the media cannot show.

Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

from ..feedback import FeedbackPacket
from .estimator import PROBE_PLAUSIBILITY, BandwidthEstimator
from .probe import PERIODIC_PROBE_S, ProbeCluster

__all__ = [
    "APP_LIMITED",
    "FIRST_PROBE_MULTIPLIER",
    "FORWARDED_MAX_BPS",
    "FORWARDED_START_BPS",
    "LIMIT_SHARE",
    "PROBE_FOR_HEADROOM",
    "ForwardedPath",
]

FORWARDED_MAX_BPS = 4_000_000
"""The estimate's ceiling (bits per second): the most a client's own estimate
allows it to send, so a path estimated there needs no limit."""
FORWARDED_START_BPS = 1_000_000
"""Where the estimate of a path not yet seen starts (bits per second): about
what a 640x480 camera needs, under what a path that carries a meeting at all
usually takes (a client's own estimate starts lower, at 300 kbit/s, because
it probes)."""
LIMIT_SHARE = 0.85
"""The share of the path's estimate that publishers are limited to: the
margin for a publisher that follows the limit up to a second late."""
APP_LIMITED = 0.8
"""Publishers whose video the SFU forwards to the subscriber at less than
this share of the limit are held back by something else (their own path,
their encoder): only then is the path probed periodically."""
FIRST_PROBE_MULTIPLIER = 2.0
"""The first probe of a path goes at this many times its start estimate
(one cluster, not a client's two at 3x and 6x: the path may be a slow one
that a meeting already fills)."""

FIRST_PROBE_FOR_S = 1.0
"""The first probe for a limit goes this long (seconds) after the cluster
before it, the next ones :data:`~.probe.PERIODIC_PROBE_S` apart."""
PROBE_FOR_HEADROOM = 1.2
"""A probe for a limit goes this much faster than the rate whose result
would just reach it: a cluster is received no faster than it was sent, and
usually a little slower."""


class ForwardedPath:
    """The estimate of one SFU → subscriber path and the limit it sets."""

    def __init__(
        self, start_bps: float = FORWARDED_START_BPS, max_bps: float = FORWARDED_MAX_BPS
    ) -> None:
        self.max_bps = max_bps
        self.estimator = BandwidthEstimator(start_bps=start_bps, max_bps=max_bps)
        """Fed with what the SFU sends (``on_sent``); feedback goes through
        :meth:`on_feedback`."""
        self.probed_at: float | None = None
        """When (seconds) the last probe result came (None before one)."""
        self.probed_bps = 0.0
        """The rate (bits per second) the last probe was received at."""
        self._probed_for = 0

    @property
    def measured(self) -> bool:
        """Whether the estimate rests on a measure of the path (a probe's
        result or a cut), not on the start guess alone."""
        return self.probed_at is not None or self.estimator.rate.decreases > 0

    def on_feedback(self, feedback: FeedbackPacket, now: float) -> list[ProbeCluster]:
        """Read the subscriber's feedback about what the SFU sent it; further
        probe clusters to send the path (a probe found more)."""
        estimator = self.estimator
        measured = self.measured
        further = estimator.on_feedback(feedback, now)
        for at, kind, rate in reversed(estimator.events):
            if at != now:
                break
            if kind == "probe_result":
                self.probed_at, self.probed_bps = now, float(rate)
                break
        if not measured and self.probed_at is not None:
            guess = estimator.rate.rate_bps
            if PROBE_PLAUSIBILITY * self.probed_bps < guess:
                # The first measure of the path says less than the start guess.
                estimator.rate.set_rate(PROBE_PLAUSIBILITY * self.probed_bps, now)
        return further

    def probes(self, now: float) -> list[ProbeCluster]:
        """Probe clusters to send the path at ``now`` while it limits
        publishers (call while some publisher's video goes to it, a few
        times a second): the first, then periodic ones while what is
        forwarded leaves the limit unused (:data:`APP_LIMITED`), and gentle
        ones while publishers fill it and the estimate holds at the ceiling
        of a known capacity."""
        estimator = self.estimator
        limit = self.limit_bps(now)
        if limit is None or not estimator.history.feedback_received:
            # A member that sends no feedback (yet) cannot tell what a probe
            # measured: it gets none.
            return []
        if not estimator.probes.clusters_sent:
            return estimator.start(now, (FIRST_PROBE_MULTIPLIER,))
        if estimator.sent_bps(now) >= APP_LIMITED * limit and not (
            estimator.rate.at_ceiling
        ):
            return []
        return estimator.poll(now)

    def probe_for(self, limit_bps: float, now: float) -> list[ProbeCluster]:
        """A probe cluster whose result, if the path carries it, lifts the
        limit to ``limit_bps`` (what a subscriber's next simulcast layer
        needs): at most every few seconds, while the path is calm, nothing
        else is probed and the estimate is under it (the probe rules of a
        client's hop, :meth:`~.estimator.BandwidthEstimator.poll`)."""
        estimator = self.estimator
        if not estimator.history.feedback_received:
            return []
        rate = PROBE_FOR_HEADROOM * limit_bps / (LIMIT_SHARE * PROBE_PLAUSIBILITY)
        if rate <= estimator.target_bps:
            return []
        # The first soon after the start probe: that one may have read low (a
        # busy moment at either end), and a subscriber waits on it.
        interval = FIRST_PROBE_FOR_S if not self._probed_for else PERIODIC_PROBE_S
        clusters = estimator.poll(now, rate, interval)
        self._probed_for += len(clusters)
        return clusters

    def limit_bps(self, now: float) -> float | None:
        """What publishers may send the path (bits per second), or None once
        its estimate is at the ceiling; on a lossy path, a share of it
        (:meth:`~.estimator.BandwidthEstimator.media_bps`)."""
        estimator = self.estimator
        if estimator.target_bps >= self.max_bps:
            return None
        return LIMIT_SHARE * estimator.media_bps(now)
