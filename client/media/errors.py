"""Errors of the client's media pipeline: devices, files and sinks.

Third-party failures (OpenCV, mss, PyAV, the OS) are translated here at the
boundary, so a caller sees a :class:`MediaError` with a message for people.
"""

from __future__ import annotations

from ..errors import ClientError

__all__ = ["AudioUnavailable", "MediaError", "SinkError", "SourceError"]


class MediaError(ClientError):
    """Base of the media pipeline's errors."""


class SourceError(MediaError):
    """A video source could not be opened or stopped delivering frames."""


class SinkError(MediaError):
    """A sink for received video could not be opened or written."""


class AudioUnavailable(MediaError):
    """No audio here: PortAudio is missing, or the device asked for is not
    there or refuses 48 kHz mono. Audio is off; everything else works."""
