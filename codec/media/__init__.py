"""The media plane's pure code: datagram formats, fragmentation and reassembly,
the H.264 codec wrapper, and the synthetic source's picture stamp.

The packet, feedback and fragmentation names import nothing beyond the standard
library, so the SFU can forward media without PyAV or numpy installed. The codec
and stamp names (:mod:`codec.media.video`, :mod:`codec.media.stamp`) load those
libraries on first use. The drawing function is imported from its module
(``from codec.media.stamp import stamp``): as a package attribute its name would
clash with the submodule's.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import PacketError, VideoCodecError
from .feedback import FEEDBACK_TICK_US, MAX_FEEDBACK_STATUSES, FeedbackPacket
from .fragment import (
    CompletedFrame,
    FramesLost,
    Reassembler,
    ReassemblerStats,
    ReassemblyEvent,
    VideoPacketizer,
    split_frame,
)
from .packet import (
    BASE_MEDIA_PAYLOAD,
    MAX_FRAGMENTS,
    MAX_MEDIA_PAYLOAD,
    MAX_SPATIAL_LAYERS,
    NO_LIMIT_BPS,
    AudioPacket,
    KeyframeRequest,
    NackPacket,
    Packet,
    PacketKind,
    ProbePacket,
    RateLimit,
    VideoPacket,
    parse_packet,
    rewrite_transport_seq,
)
from .seqnum import Unwrapper, seq_delta

if TYPE_CHECKING:
    from .stamp import SyntheticPattern, read_stamp
    from .video import EncodedFrame, VideoDecoder, VideoEncoder

__all__ = [
    "BASE_MEDIA_PAYLOAD",
    "FEEDBACK_TICK_US",
    "MAX_FEEDBACK_STATUSES",
    "MAX_FRAGMENTS",
    "MAX_MEDIA_PAYLOAD",
    "MAX_SPATIAL_LAYERS",
    "NO_LIMIT_BPS",
    "AudioPacket",
    "CompletedFrame",
    "EncodedFrame",
    "FeedbackPacket",
    "FramesLost",
    "KeyframeRequest",
    "NackPacket",
    "Packet",
    "PacketError",
    "PacketKind",
    "ProbePacket",
    "RateLimit",
    "Reassembler",
    "ReassemblerStats",
    "ReassemblyEvent",
    "SyntheticPattern",
    "Unwrapper",
    "VideoCodecError",
    "VideoDecoder",
    "VideoEncoder",
    "VideoPacket",
    "VideoPacketizer",
    "parse_packet",
    "read_stamp",
    "rewrite_transport_seq",
    "seq_delta",
    "split_frame",
]

_LAZY = {
    "EncodedFrame": "video",
    "VideoDecoder": "video",
    "VideoEncoder": "video",
    "SyntheticPattern": "stamp",
    "read_stamp": "stamp",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
