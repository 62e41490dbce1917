"""Congestion control of the media plane, pure: every decision takes ``now``.

:class:`MediaCongestionControl` is the QUIC connection's own controller, run by
aioquic (register it with :func:`register_media_congestion_control`); it is built
on the delivery-rate sampler, the ACK-aggregation and RTT-noise estimators and
the windowed filters of this package. :class:`ScavengerCongestionControl`
runs connections that carry only files: it gives way to any queue.
See docs/congestion.md.
"""

from .aggregation import AckAggregation
from .controller import (
    CONGESTION_CONTROL_NAME,
    MediaCongestionControl,
    Mode,
    register_media_congestion_control,
)
from .delivery import DeliverySampler, RateSample
from .noise import RttNoise
from .scavenger import (
    SCAVENGER_CONTROL_NAME,
    ScavengerCongestionControl,
    register_scavenger_congestion_control,
)
from .windowed import WindowedFilter, windowed_max, windowed_min

__all__ = [
    "CONGESTION_CONTROL_NAME",
    "AckAggregation",
    "DeliverySampler",
    "MediaCongestionControl",
    "Mode",
    "RateSample",
    "RttNoise",
    "SCAVENGER_CONTROL_NAME",
    "ScavengerCongestionControl",
    "WindowedFilter",
    "register_media_congestion_control",
    "register_scavenger_congestion_control",
    "windowed_max",
    "windowed_min",
]
