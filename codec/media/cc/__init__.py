"""Congestion control of the media plane, pure: every decision takes ``now``.

:class:`MediaCongestionControl` is the QUIC connection's own controller, run by
aioquic (register it with :func:`register_media_congestion_control`); it is built
on the delivery-rate sampler and the windowed filters of this package.
"""

from .controller import (
    CONGESTION_CONTROL_NAME,
    MediaCongestionControl,
    Mode,
    register_media_congestion_control,
)
from .delivery import DeliverySampler, RateSample
from .windowed import WindowedFilter, windowed_max, windowed_min

__all__ = [
    "CONGESTION_CONTROL_NAME",
    "DeliverySampler",
    "MediaCongestionControl",
    "Mode",
    "RateSample",
    "WindowedFilter",
    "register_media_congestion_control",
    "windowed_max",
    "windowed_min",
]
