"""What a local video track's encoder is asked for: its start rate, its
ceiling and its rate buffer, from the size, frame rate and kind of its
source."""

from __future__ import annotations

__all__ = [
    "MAX_BITRATE_FACTOR",
    "VBV_BUFFER_S",
    "default_bitrate_bps",
    "max_bitrate_bps",
]

VBV_BUFFER_S = 0.3
"""The encoder's rate buffer, in seconds of its start rate: it bounds a
keyframe's size, which on a slow link must not overflow the bottleneck's
queue (300 kbit/s: 11 KB, about the 300 ms a router buffers)."""
MAX_BITRATE_FACTOR = 4
"""The encoder's ceiling: this many times the nominal rate of the source's
pixels (the VBV max rate is fixed when the encoder opens: ``docs/media.md``
4.3)."""


def default_bitrate_bps(width: int, height: int, fps: float, kind: str) -> int:
    """A starting bitrate for a track: about 0.055 bits per pixel per frame for
    camera video (500 kbit/s at 640x480, 30 fps), twice that for screen content
    so that text stays sharp; never below 150 kbit/s."""
    return max(150_000, _nominal_bps(width, height, fps, kind))


def max_bitrate_bps(width: int, height: int, fps: float, kind: str) -> int:
    """The most a track's encoder is asked for, however much the link takes:
    :data:`MAX_BITRATE_FACTOR` times the nominal rate of its pixels (2 Mbit/s
    at 640x480, 30 fps), at least 300 kbit/s. More makes every frame more
    packets, each a chance of loss, for little visible gain."""
    return max(300_000, MAX_BITRATE_FACTOR * _nominal_bps(width, height, fps, kind))


def _nominal_bps(width: int, height: int, fps: float, kind: str) -> int:
    bits_per_pixel = 0.11 if kind == "screen" else 0.055
    return int(width * height * fps * bits_per_pixel)
