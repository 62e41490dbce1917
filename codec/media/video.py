"""H.264 through PyAV's libx264, tuned for real time, and its decoder.

Encoder: ``preset=ultrafast``, ``tune=zerolatency``, constrained baseline (no
B-frames, so one frame in gives at most one access unit out, at once), Annex B
with SPS/PPS repeated before every IDR. Keyframes (IDRs) come only when asked
for (:meth:`VideoEncoder.request_keyframe`, rate-limited on the caller's clock)
and at a long periodic interval; x264's own scene-cut keyframes are off.
Periodic intra refresh is on: a column of intra blocks sweeps the picture every
``intra_refresh_s``, so a decoder that lost a frame is whole again after the
next complete sweep (the decoder follows its recovery point SEIs), with no
large IDR and no request.

Rate control is x264's CBR mode (VBV max rate = target bitrate), the one mode in
which x264 applies a new bitrate to a running encoder (``x264_encoder_reconfig``,
reached through FFmpeg when ``AVCodecContext.bit_rate`` changes between frames).
PyAV cannot change the VBV max rate after opening, and x264 clamps the target to
it, so the encoder is opened at ``max_bitrate_bps`` and lowered to the start
bitrate before the first frame: every later :meth:`VideoEncoder.set_bitrate` up to
that ceiling takes effect within a few frames, without a keyframe.
``docs/media.md`` has the measurements.

Both classes are synchronous CPU work: adapters run them in an executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.frame import PictureType

from .errors import VideoCodecError
from .h264 import contains_idr, recovery_frame_count
from .stamp import SyntheticPattern

__all__ = [
    "MIN_BITRATE_BPS",
    "VIDEO_CLOCK_HZ",
    "EncodedFrame",
    "VideoDecoder",
    "VideoEncoder",
    "contains_idr",
    "encode_synthetic_clip",
]

VIDEO_CLOCK_HZ = 90_000
"""Clock rate of video media timestamps, as in RTP."""

MIN_BITRATE_BPS = 30_000
"""Lowest target the encoder accepts; lower requests are raised to it."""


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One H.264 access unit (Annex B byte stream)."""

    data: bytes
    keyframe: bool
    """An IDR: decodable on its own, preceded by SPS and PPS."""
    pts: int
    """Capture time on the 90 kHz media clock, modulo 2**32."""


class VideoEncoder:
    """Encodes frames of one fixed size to H.264 at a changeable bitrate.

    ``bitrate_bps`` is the start target; :meth:`set_bitrate` moves it between
    :data:`MIN_BITRATE_BPS` and ``max_bitrate_bps`` (default four times the start)
    without a new keyframe. The VBV buffer holds ``vbv_buffer_s`` seconds at the
    start bitrate (never less than 1.1 frames at the ceiling, x264's minimum); it
    bounds how far one frame can overshoot the average.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        bitrate_bps: int,
        *,
        max_bitrate_bps: int | None = None,
        keyframe_interval_s: float = 20.0,
        min_keyframe_interval_s: float = 0.5,
        vbv_buffer_s: float = 0.5,
        intra_refresh_s: float | None = 1.0,
        threads: int = 1,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} must be positive, even")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.width = width
        self.height = height
        self.keyframe_interval_s = keyframe_interval_s
        self.min_keyframe_interval_s = min_keyframe_interval_s
        self.max_bitrate_bps = max(max_bitrate_bps or 4 * bitrate_bps, bitrate_bps)
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self._keyframe_requested = False
        self._last_keyframe_at: float | None = None
        self._frame_ticks = VIDEO_CLOCK_HZ / fps
        buffer_bits = max(bitrate_bps * vbv_buffer_s, self.max_bitrate_bps / fps * 1.1)
        context = av.CodecContext.create("libx264", "w")
        context.width = width
        context.height = height
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, VIDEO_CLOCK_HZ)
        context.framerate = Fraction(fps).limit_denominator(1001)
        context.max_b_frames = 0
        context.thread_count = threads
        context.bit_rate = self.max_bitrate_bps
        context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "maxrate": str(self.max_bitrate_bps),
            "bufsize": str(int(buffer_bits)),
            "x264-params": _x264_params(fps, intra_refresh_s),
        }
        try:
            context.open()
        except av.FFmpegError as exc:
            raise VideoCodecError(f"cannot open libx264: {exc}") from None
        self._context = context
        self._bitrate_bps = 0
        self.set_bitrate(bitrate_bps)

    @property
    def bitrate_bps(self) -> int:
        """The current target bitrate, in bits per second."""
        return self._bitrate_bps

    def set_bitrate(self, bitrate_bps: int) -> int:
        """Retarget the encoder from the next frame on; returns the target used,
        clamped to ``[MIN_BITRATE_BPS, max_bitrate_bps]``."""
        target = int(min(max(bitrate_bps, MIN_BITRATE_BPS), self.max_bitrate_bps))
        self._context.bit_rate = target
        self._bitrate_bps = target
        return target

    def request_keyframe(self) -> None:
        """Ask for a keyframe (a receiver lost one, or switched layer).

        It is produced by the first :meth:`encode` at least
        ``min_keyframe_interval_s`` after the previous keyframe; requests in
        between are merged into that one.
        """
        self._keyframe_requested = True

    def encode(
        self,
        frame: np.ndarray | av.VideoFrame,
        now: float,
        force_keyframe: bool = False,
    ) -> list[EncodedFrame]:
        """Encode one frame captured at ``now`` (seconds, caller's clock).

        ``frame`` is an RGB ``(height, width, 3)`` uint8 array, a YUV 4:2:0
        ``(height * 3 // 2, width)`` uint8 array, or an ``av.VideoFrame`` of any
        format (whose ``pts`` and ``pict_type`` are overwritten); other sizes are
        scaled. ``force_keyframe`` skips the rate limit. Returns the access unit
        (this encoder has no delay, so exactly one per frame).
        """
        video_frame = _to_video_frame(frame)
        video_frame.pts = round(self.frames_encoded * self._frame_ticks)
        # Always set: a decoded frame's own I/P type would otherwise steer x264.
        keyframe = force_keyframe or self._keyframe_due(now)
        video_frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        try:
            packets = self._context.encode(video_frame)
        except av.FFmpegError as exc:
            raise VideoCodecError(f"libx264 refused the frame: {exc}") from None
        self.frames_encoded += 1
        pts = round(now * VIDEO_CLOCK_HZ) & 0xFFFFFFFF
        out = []
        for packet in packets:
            data = bytes(packet)
            # libx264 flags the start of a refresh wave as a keyframe too:
            # only an IDR is one here.
            keyframe = contains_idr(data)
            if keyframe:
                self.keyframes_encoded += 1
                self._last_keyframe_at = now
                self._keyframe_requested = False
            out.append(EncodedFrame(data, keyframe, pts))
        return out

    def _keyframe_due(self, now: float) -> bool:
        last = self._last_keyframe_at
        if last is None:
            return True
        since = now - last
        if since >= self.keyframe_interval_s:
            return True
        return self._keyframe_requested and since >= self.min_keyframe_interval_s


def _x264_params(fps: float, intra_refresh_s: float | None) -> str:
    if intra_refresh_s is None:
        return "keyint=infinite:scenecut=0"
    # With intra refresh, keyint is the length of one refresh sweep.
    period = max(2, round(fps * intra_refresh_s))
    return f"keyint={period}:scenecut=0:intra-refresh=1"


def _to_video_frame(frame: np.ndarray | av.VideoFrame) -> av.VideoFrame:
    if isinstance(frame, av.VideoFrame):
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        # A view of the array, not a copy: encode() converts it to the
        # encoder's format before it returns, and the copy held the GIL.
        return av.VideoFrame.from_numpy_buffer(
            np.ascontiguousarray(frame), format="rgb24"
        )
    if frame.ndim == 2:
        return av.VideoFrame.from_ndarray(frame, format="yuv420p")
    raise ValueError(f"cannot encode an array of shape {frame.shape}")


class VideoDecoder:
    """Decodes H.264 access units to RGB arrays, shows only whole pictures,
    and knows when it needs a keyframe.

    It starts needing an IDR: until the first, access units are discarded
    undecoded. After :meth:`frame_lost`, data FFmpeg rejects, or a frame FFmpeg
    flags corrupt, the picture is damaged: the decoder keeps decoding (so the
    references stay as close as they can) but shows nothing until it is whole
    again, at the next IDR or when an intra refresh wave that began after the
    damage completes (its recovery point SEI says after how many frames).
    Meanwhile :attr:`needs_keyframe` is true, so the caller may ask for a
    keyframe. Nothing here raises on bad input.
    """

    def __init__(self) -> None:
        self._context = av.CodecContext.create("h264", "r")
        # Frame threading would hold back one frame per thread: keep it serial.
        self._context.thread_count = 1
        self._started = False
        self._damaged = False
        self._recovery_countdown: int | None = None
        self.frames_decoded = 0
        """Pictures returned."""
        self.frames_discarded = 0
        """Access units dropped before the first IDR, rejected, or flagged
        corrupt."""
        self.frames_hidden = 0
        """Pictures decoded but not returned while the picture was damaged."""
        self.refresh_recoveries = 0
        """Times the picture was made whole by an intra refresh wave, with no
        keyframe."""

    @property
    def needs_keyframe(self) -> bool:
        """No whole picture can be shown until an IDR (or, once started, the
        end of a refresh wave that begins after the damage)."""
        return not self._started or self._damaged

    def frame_lost(self) -> None:
        """Tell the decoder a frame never arrived (a reassembly loss)."""
        self._damage()

    def _damage(self) -> None:
        self._damaged = True
        self._recovery_countdown = None

    def decode(self, data: bytes) -> list[np.ndarray]:
        """Decode one access unit; returns ``(height, width, 3)`` RGB arrays."""
        if not data:
            # An empty packet is FFmpeg's end-of-stream signal: never send one.
            self._damage()
            self.frames_discarded += 1
            return []
        idr = contains_idr(data)
        if not self._started and not idr:
            self.frames_discarded += 1
            return []
        recovery = None if idr else recovery_frame_count(data)
        try:
            frames = self._context.decode(av.Packet(data))
        except av.FFmpegError:
            self._damage()
            self.frames_discarded += 1
            return []
        images = []
        for frame in frames:
            if frame.is_corrupt:
                self._damage()
                self.frames_discarded += 1
                continue
            if idr:
                self._started = True
                self._damaged = False
            elif self._damaged:
                self._follow_recovery(recovery)
            if self._damaged:
                self.frames_hidden += 1
                continue
            self.frames_decoded += 1
            images.append(frame.to_ndarray(format="rgb24"))
        return images

    def _follow_recovery(self, recovery: int | None) -> None:
        """Count down to the end of the first refresh wave begun while damaged."""
        if self._recovery_countdown is None:
            if recovery is None:
                return
            self._recovery_countdown = recovery
        else:
            self._recovery_countdown -= 1
        if self._recovery_countdown <= 0:
            self._damaged = False
            self._recovery_countdown = None
            self.refresh_recoveries += 1


def encode_synthetic_clip(
    width: int, height: int, fps: float, bitrate_bps: int, frames: int
) -> list[EncodedFrame]:
    """``frames`` stamped synthetic pictures encoded once: a keyframe, then
    P-frames, so the clip can be sent in a loop (load generators and tests send
    video this way without paying for an encoder). Stamps carry the frame
    number within the clip."""
    pattern = SyntheticPattern(width, height)
    encoder = VideoEncoder(width, height, fps, bitrate_bps)
    clip = []
    for n in range(frames):
        (encoded,) = encoder.encode(pattern.render(n, 0), n / fps)
        clip.append(encoded)
    return clip
