"""The client's media pipeline: video and audio sources, sending, receiving,
sinks and devices.

:class:`Call` is the entry point: it follows ``session.rooms``, publishes local
sources and receives every remote track (audio through :attr:`Call.audio`).
Capture, encoding and decoding run on threads, never on the event loop;
pictures reach renderers through a newest-frame-only slot; audio reaches the
speaker from the sink's own playout clock.
"""

from .audio_call import AudioCall, AudioEvent, MuteAsked, SpeakingChanged
from .audio_devices import AudioDevice, Microphone, Speaker, list_audio_devices
from .audio_processing import EchoCanceller
from .audio_receiver import AudioPlayout, AudioReceiver
from .audio_sender import AudioSender, CaptureProcessor
from .audio_sinks import AudioSink, SpeakerSink, WavSink, parse_audio_sink
from .audio_sources import (
    AudioSource,
    MicSource,
    SilenceSource,
    ToneSource,
    WavSource,
    parse_audio_source,
    read_wav,
)
from .call import Call
from .errors import AudioUnavailable, MediaError, SinkError, SourceError
from .frames import DecodedFrame, NewestFrame
from .receiver import FrameConsumer, VideoReceiver
from .sender import VideoSender, default_bitrate_bps
from .sinks import FrameSaver, Y4mSink, parse_sink
from .sources import FramePacer, SyntheticSource, VideoSource, parse_video_source

__all__ = [
    "AudioCall",
    "AudioDevice",
    "AudioEvent",
    "AudioPlayout",
    "AudioReceiver",
    "AudioSender",
    "AudioSink",
    "AudioSource",
    "AudioUnavailable",
    "Call",
    "CaptureProcessor",
    "EchoCanceller",
    "DecodedFrame",
    "FrameConsumer",
    "FramePacer",
    "FrameSaver",
    "MediaError",
    "MicSource",
    "Microphone",
    "MuteAsked",
    "NewestFrame",
    "SilenceSource",
    "SinkError",
    "SourceError",
    "Speaker",
    "SpeakerSink",
    "SpeakingChanged",
    "SyntheticSource",
    "ToneSource",
    "VideoReceiver",
    "VideoSender",
    "VideoSource",
    "WavSink",
    "WavSource",
    "Y4mSink",
    "default_bitrate_bps",
    "list_audio_devices",
    "parse_audio_sink",
    "parse_audio_source",
    "parse_sink",
    "parse_video_source",
    "read_wav",
]
