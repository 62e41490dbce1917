"""Rate adaptation of the media plane, per hop and pure: the receiver's
arrival recorder (feedback), the sender's send history, the delay-based
(trendline + AIMD) and loss-based estimate with probing, and the pacer that is
the hop's one egress point. See docs/adaptation.md."""

from __future__ import annotations

from .arrivals import FEEDBACK_INTERVAL_S, ArrivalRecorder
from .estimator import BandwidthEstimator, EstimatorStats
from .forwarded import (
    FORWARDED_MAX_BPS,
    FORWARDED_START_BPS,
    LIMIT_SHARE,
    ForwardedPath,
)
from .history import PacketResult, SendHistory
from .ladder import (
    MAX_CORRECTION,
    EncoderCorrection,
    Quality,
    QualityLadder,
    encoder_target_bps,
)
from .output_budget import OutputBudget
from .pacer import Pacer, PacerStats, Released
from .probe import ProbeCluster, ProbeController, probe_result
from .rate_control import AimdRateControl, RateState
from .repair_share import RepairShare
from .trendline import DelayDetector, Usage

__all__ = [
    "FEEDBACK_INTERVAL_S",
    "FORWARDED_MAX_BPS",
    "FORWARDED_START_BPS",
    "LIMIT_SHARE",
    "MAX_CORRECTION",
    "AimdRateControl",
    "ArrivalRecorder",
    "BandwidthEstimator",
    "DelayDetector",
    "EncoderCorrection",
    "EstimatorStats",
    "OutputBudget",
    "ForwardedPath",
    "PacerStats",
    "Pacer",
    "PacketResult",
    "ProbeCluster",
    "ProbeController",
    "Quality",
    "QualityLadder",
    "RateState",
    "Released",
    "RepairShare",
    "SendHistory",
    "Usage",
    "encoder_target_bps",
    "probe_result",
]
