"""The client's media pipeline: video sources, sending, receiving, sinks.

:class:`Call` is the entry point: it follows ``session.rooms``, publishes local
sources and receives every remote video track. Capture, encoding and decoding
run on threads, never on the event loop; pictures reach renderers through a
newest-frame-only slot.
"""

from .call import Call
from .errors import MediaError, SinkError, SourceError
from .frames import DecodedFrame, NewestFrame
from .receiver import FrameConsumer, VideoReceiver
from .sender import VideoSender, default_bitrate_bps
from .sinks import FrameSaver, Y4mSink, parse_sink
from .sources import FramePacer, SyntheticSource, VideoSource, parse_video_source

__all__ = [
    "Call",
    "DecodedFrame",
    "FrameConsumer",
    "FramePacer",
    "FrameSaver",
    "MediaError",
    "NewestFrame",
    "SinkError",
    "SourceError",
    "SyntheticSource",
    "VideoReceiver",
    "VideoSender",
    "VideoSource",
    "Y4mSink",
    "default_bitrate_bps",
    "parse_sink",
    "parse_video_source",
]
