"""Audio's pure cores: Opus, VAD/DTX, levels, the jitter buffer, the mixer,
lip sync, the device buffer's policy, the onsets of stamped audio, and the
ring of records the audio process and the engine share.

Sans-I/O as the rest of :mod:`codec`: callers pass ``now`` (seconds on their
own monotonic clock) and 20 ms frames of 48 kHz mono int16 samples
(:data:`FRAME_SAMPLES` of them). Importing this package loads numpy; libopus
and webrtcvad load when a codec or detector is created.
"""

from __future__ import annotations

from .device_latency import (
    MICROPHONE_LADDER_S,
    SPEAKER_LADDER_S,
    DeviceLatency,
    LatencyStep,
)
from .dtx import DtxDecision, DtxGate, VoiceDetector
from .errors import AudioCodecError
from .fec_policy import FecPolicy, FecSetting, LossCounter, LossReportGate
from .jitter import JitterBuffer, JitterStats, Playout, PlayoutKind
from .level import SILENT_LEVEL, ActiveSpeaker, ActiveSpeakerChanged, audio_level
from .mixer import MAX_VOLUME, Mixer
from .onset import ONSET_LEVEL, OnsetDetector, pair_onsets
from .opus import (
    DEFAULT_BITRATE_BPS,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    OpusDecoder,
    OpusEncoder,
)
from .ring import ByteRing
from .sync import AvSync, AvSyncStats

__all__ = [
    "DEFAULT_BITRATE_BPS",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "MAX_VOLUME",
    "MICROPHONE_LADDER_S",
    "ONSET_LEVEL",
    "SAMPLE_RATE",
    "SILENT_LEVEL",
    "SPEAKER_LADDER_S",
    "ActiveSpeaker",
    "ActiveSpeakerChanged",
    "AudioCodecError",
    "AvSync",
    "AvSyncStats",
    "ByteRing",
    "DeviceLatency",
    "DtxDecision",
    "DtxGate",
    "FecPolicy",
    "FecSetting",
    "JitterBuffer",
    "JitterStats",
    "LatencyStep",
    "LossCounter",
    "LossReportGate",
    "Mixer",
    "OnsetDetector",
    "OpusDecoder",
    "OpusEncoder",
    "Playout",
    "PlayoutKind",
    "VoiceDetector",
    "audio_level",
    "pair_onsets",
]
