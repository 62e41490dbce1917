"""The media congestion controller's constants, each with the reason for its value.

Times are seconds, sizes packets of the connection's datagram size, gains and
fractions plain factors. ``controller`` explains how they fit together; the
measurements that back them are in docs/congestion.md.
"""

from __future__ import annotations

MIN_WINDOW_PACKETS = 4
"""The window never shrinks below this many full-sized packets."""
HEADROOM_PACKETS = 2
"""Packets allowed in flight above ``gain x BDP``, for ACKs that come in clumps."""
STARTUP_GROWTH_FRACTION = 0.5
"""In ``STARTUP`` the window grows only while at least this fraction of it is in
flight, so an idle connection does not grow a window it never used."""
APP_LIMITED_FRACTION = 0.5
"""A packet sent with less than this fraction of the window in flight marks the
sender app-limited: its rate samples may raise the bandwidth estimate, never
lower it."""
FULL_BANDWIDTH_GROWTH = 1.25
"""``STARTUP`` ends after ``FULL_BANDWIDTH_ROUNDS`` rounds without the bandwidth
growing by this factor."""
FULL_BANDWIDTH_ROUNDS = 3
"""Rounds without growth after which ``STARTUP`` takes the pipe as full (BBR's)."""
DRAIN_GAIN = 0.75
"""Window gain while draining a queue."""
PROBE_GAINS = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
"""Window gains of ``PROBE_BW``, one round trip each: probe, drain what the probe
queued, cruise."""
CRUISE_PHASE = 2
"""The phase ``PROBE_BW`` starts in (cruising; a probe comes six rounds later)."""
BANDWIDTH_WINDOW_ROUNDS = 8
"""Round trips the bandwidth maximum looks back over: one gain cycle."""
MIN_RTT_WINDOW_S = 10.0
"""Seconds the propagation-delay minimum looks back over."""
QUEUE_FRACTION = 1 / 3
"""Queueing delay, as a fraction of the propagation delay, above which a queue is
said to stand (the probe phase alone queues a quarter)."""
QUEUE_FLOOR_S = 0.008
"""Queueing delay that always counts as noise (jitter, ACK timing), in seconds."""
JITTER_FACTOR = 3.0
"""A queue must also stand above this many times the RTT jitter (the mean change
from one RTT sample to the next, as RFC 3550 measures interarrival jitter), so a
jittery path does not look queued."""
JITTER_GAIN = 1 / 16
"""Weight of each RTT change in the jitter average (RFC 3550's)."""
MIN_WINDOW_DELAY_S = 0.010
"""The window covers at least this much time at the estimated bandwidth: an
endpoint in Python answers in turns of milliseconds, so on a path whose
propagation delay is below that (loopback, a LAN) a window of one minimum RTT
starves the flow whenever the host is busy (a 256 MiB download over loopback
ran at a quarter of Reno's rate without it)."""
SPREAD_FACTOR = 2.0
"""The window covers the propagation delay plus this many times the RTT spread
(below): the high end of a jittery path's RTTs (the top of a uniform spread)."""
QUEUE_SPREAD_FACTOR = 3.0
"""A queue must stand above this many times the RTT spread, so that a stretch of
high jitter does not look queued."""
SPREAD_GROUP_SAMPLES = 16
"""RTT samples, taken while cruising, in one measurement of the RTT spread (their
mean above their minimum); a group also ends only with a round trip, so on a fast
path it is a round and on a short one (a LAN, loopback) it spans many."""
SPREAD_WINDOW_GROUPS = 16
"""Groups over which the spread is the lowest measured. The window adds the
spread to the propagation delay: on a jittery path the window must cover more
than the minimum RTT or the flow starves itself. Jitter spreads every group; a
queue that builds once spreads only a few, and the minimum ignores them."""
MAX_AGGREGATION_FRACTION = 0.25
"""The window covers ACK clumps (``aggregation``) up to this fraction of the BDP:
enough for a host that answers in bursts (loopback file transfers starve without
it), not so much that jitter the RTT spread already covers fills a queue twice."""
QUEUE_ROUNDS = 2
"""Round trips in a row whose lowest RTT shows a queue before the controller
decides the capacity has dropped."""
STARTUP_QUEUE_FRACTION = 1 / 8
"""In ``STARTUP``, whose window doubles each round trip, a queue is judged
earlier: above this fraction of the propagation delay, clamped between the two
bounds below (HyStart++'s rule)."""
STARTUP_QUEUE_MIN_S = 0.004
STARTUP_QUEUE_MAX_S = 0.016
RECENT_RTT_SAMPLES = 8
"""RTT samples whose minimum is the queue a loss (or ``STARTUP``) is judged
against: a queue raises all of them, jitter rarely does."""
LOSS_INTERVAL_PACKETS = 100
"""Packets (acknowledged or lost) over which a loss fraction is measured; an
interval also lasts at least one round trip."""
HEAVY_LOSS_FRACTION = 0.10
"""Loss fraction of an interval that counts as congestion even without a queue."""
BETA = 0.8
"""Factor on the bandwidth the controller allows itself at a congestion event."""
CAP_RECOVERY = 1.25
"""Factor by which that allowance grows back after each clean interval."""
MEDIA_WINDOW_GAIN = 1.5
"""The window covers the media's own rate (what the media plane's delay-based
estimate lets them send, :meth:`MediaCongestionControl.set_media_rate`) times
this over the current round trip: the media pacer releases at 1.5 times its
estimate, and aioquic paces at ``congestion_window / smoothed_rtt``."""
