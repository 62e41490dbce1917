"""The media datagram: one compact, versioned binary header per QUIC DATAGRAM.

Every datagram starts with one byte: a 2-bit version, a 3-bit kind and 3 flag bits.
Audio, video and probe datagrams keep their per-hop transport sequence number at
byte offset 2, so the SFU rewrites it in place with :func:`rewrite_transport_seq`
without parsing the rest. The bit layouts are drawn in ``docs/media.md``.

:func:`parse_packet` turns bytes into one of the packet dataclasses (feedback is
laid out in :mod:`codec.media.feedback`, NACKs in :mod:`codec.media.nack`) and
raises only :class:`~codec.media.errors.PacketError`; the payload of a media
packet is a zero-copy ``memoryview`` into the datagram. Each packet's
``serialize()`` gives its bytes back and raises
:class:`~codec.errors.LocalProtocolError` for a field out of range.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ErrorCode, LocalProtocolError
from ._wire import (
    BASE_MEDIA_PAYLOAD,
    MAX_MEDIA_PAYLOAD,
    VERSION,
    PacketKind,
    first_byte,
    pack,
)
from .errors import PacketError
from .feedback import FeedbackPacket, parse_feedback
from .nack import NackPacket, parse_nack

__all__ = [
    "BASE_MEDIA_PAYLOAD",
    "AUDIO_HEADER_SIZE",
    "MAX_FRAGMENTS",
    "MAX_MEDIA_PAYLOAD",
    "MAX_SPATIAL_LAYERS",
    "NO_LIMIT_BPS",
    "PROBE_HEADER_SIZE",
    "TRANSPORT_SEQ_OFFSET",
    "VERSION",
    "VIDEO_HEADER_SIZE",
    "AudioPacket",
    "KeyframeRequest",
    "NackPacket",
    "Packet",
    "PacketKind",
    "ProbePacket",
    "RateLimit",
    "VideoPacket",
    "parse_packet",
    "rewrite_transport_seq",
]

MAX_FRAGMENTS = 1024
"""Most fragments one video frame may be split into (frames up to ~1.1 MiB)."""

TRANSPORT_SEQ_OFFSET = 2
"""Byte offset of the 16-bit transport sequence number in audio, video and probe
datagrams."""

_AUDIO = struct.Struct(">BBHIHI")
_VIDEO = struct.Struct(">BBHIHIHHH")
_PROBE = struct.Struct(">BBH")
_KEYFRAME_REQUEST = struct.Struct(">BBI")
_RATE_LIMIT = struct.Struct(">BBII")
_LAYER_LIMIT_FLAG = 0x80
_LAYER_RESERVED_BITS = 0x70
MAX_SPATIAL_LAYERS = 3
"""Most simulcast spatial layers a video track is sent as (the spatial
layer id, the high nibble of a video datagram's byte 1, is 0 to 2)."""
NO_LIMIT_BPS = 0xFFFFFFFF
"""A layer's rate limit that says: needed, at whatever rate it has."""
_U16 = struct.Struct(">H")

AUDIO_HEADER_SIZE = _AUDIO.size
VIDEO_HEADER_SIZE = _VIDEO.size
PROBE_HEADER_SIZE = _PROBE.size

_KEYFRAME_FLAG = 0b100
_VOICE_ACTIVITY = 0x80


_WITH_TRANSPORT_SEQ = frozenset(
    first_byte(kind, flags)
    for kind in (PacketKind.AUDIO, PacketKind.VIDEO, PacketKind.PROBE)
    for flags in range(8)
)


def _check_payload(payload: bytes | memoryview, what: str) -> None:
    if len(payload) > MAX_MEDIA_PAYLOAD:
        raise LocalProtocolError(
            f"{what} payload of {len(payload)} bytes is over {MAX_MEDIA_PAYLOAD}",
            ErrorCode.TOO_LARGE,
        )


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One audio frame (an Opus packet of 20 ms) from one track."""

    track_id: int
    """Server-assigned track id (32 bits), bound to the publishing connection."""
    seq: int
    """Per-track sequence number (16 bits, wraps), set by the publisher."""
    transport_seq: int
    """Per-hop transport sequence number (16 bits, wraps), rewritten by the SFU."""
    timestamp: int
    """Media timestamp of the first sample, 48 kHz clock (32 bits, wraps)."""
    level: int
    """Audio level in -dBov, 0 (loudest) to 127 (silence), as RFC 6464."""
    voice_activity: bool
    """The sender's VAD judged the frame to contain speech (RFC 6464's V bit)."""
    payload: bytes | memoryview
    """The encoded audio, at most :data:`MAX_MEDIA_PAYLOAD` bytes."""

    def serialize(self) -> bytes:
        """The datagram bytes: 14-byte header, then the payload."""
        if not 0 <= self.level <= 127:
            raise LocalProtocolError(
                f"audio level {self.level} is outside 0..127",
                ErrorCode.INVALID_ARGUMENT,
            )
        _check_payload(self.payload, "audio")
        level_byte = self.level | (_VOICE_ACTIVITY if self.voice_activity else 0)
        header = pack(
            _AUDIO,
            "audio",
            first_byte(PacketKind.AUDIO),
            level_byte,
            self.transport_seq,
            self.track_id,
            self.seq,
            self.timestamp,
        )
        return header + self.payload


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One fragment of an encoded video frame from one track."""

    track_id: int
    """Server-assigned track id (32 bits), bound to the publishing connection."""
    seq: int
    """Per-track sequence number (16 bits, wraps), set by the publisher."""
    transport_seq: int
    """Per-hop transport sequence number (16 bits, wraps), rewritten by the SFU."""
    timestamp: int
    """Capture time of the frame, 90 kHz clock (32 bits, wraps)."""
    frame_number: int
    """Counts the frames of this track (16 bits, wraps); all fragments share it."""
    fragment_index: int
    """Position of this fragment in the frame, from 0."""
    fragment_count: int
    """How many fragments the frame has, 1 to :data:`MAX_FRAGMENTS`."""
    keyframe: bool
    """The frame is an IDR access unit: decodable without any earlier frame."""
    layer: int
    """Layer id (8 bits): spatial (simulcast) layer in the high nibble, temporal
    layer in the low nibble; 0 for a single-layer stream."""
    payload: bytes | memoryview
    """This fragment's bytes, 1 to :data:`MAX_MEDIA_PAYLOAD` of them."""

    def serialize(self) -> bytes:
        """The datagram bytes: 20-byte header, then the payload."""
        if not 0 <= self.fragment_index < self.fragment_count <= MAX_FRAGMENTS:
            raise LocalProtocolError(
                f"fragment {self.fragment_index} of {self.fragment_count} is not "
                f"a valid position (at most {MAX_FRAGMENTS} fragments)",
                ErrorCode.INVALID_ARGUMENT,
            )
        if not self.payload:
            raise LocalProtocolError(
                "video fragment payload is empty", ErrorCode.INVALID_ARGUMENT
            )
        _check_payload(self.payload, "video")
        flags = _KEYFRAME_FLAG if self.keyframe else 0
        header = pack(
            _VIDEO,
            "video",
            first_byte(PacketKind.VIDEO, flags),
            self.layer,
            self.transport_seq,
            self.track_id,
            self.seq,
            self.timestamp,
            self.frame_number,
            self.fragment_index,
            self.fragment_count,
        )
        return header + self.payload


@dataclass(frozen=True, slots=True)
class ProbePacket:
    """Padding sent to probe for bandwidth; counted by transport feedback only.

    Probes travel one hop: the SFU answers them in its feedback and never
    forwards them.
    """

    cluster_id: int
    """Which probe cluster (burst sent at one target rate) this belongs to."""
    transport_seq: int
    """Per-hop transport sequence number (16 bits, wraps)."""
    padding_size: int
    """Bytes of zero padding after the 4-byte header."""

    def serialize(self) -> bytes:
        """The datagram bytes: 4-byte header, then ``padding_size`` zero bytes."""
        if not 0 <= self.padding_size <= MAX_MEDIA_PAYLOAD:
            raise LocalProtocolError(
                f"probe padding of {self.padding_size} bytes is outside "
                f"0..{MAX_MEDIA_PAYLOAD}",
                ErrorCode.INVALID_ARGUMENT,
            )
        header = pack(
            _PROBE,
            "probe",
            first_byte(PacketKind.PROBE),
            self.cluster_id,
            self.transport_seq,
        )
        return header + bytes(self.padding_size)


@dataclass(frozen=True, slots=True)
class KeyframeRequest:
    """A receiver asks the publisher of ``track_id`` for a keyframe.

    Sent receiver → SFU; the SFU coalesces the requests of all subscribers and
    sends one to the publisher, whose encoder rate-limits what it honours.
    """

    track_id: int
    """The video track that needs a keyframe (32 bits)."""
    layer: int
    """The layer id wanted, as in :attr:`VideoPacket.layer`."""

    def serialize(self) -> bytes:
        """The datagram bytes: exactly 6 of them."""
        return pack(
            _KEYFRAME_REQUEST,
            "keyframe request",
            first_byte(PacketKind.KEYFRAME_REQUEST),
            self.layer,
            self.track_id,
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The SFU tells a publisher the most one of its tracks should send.

    Sent SFU → publisher when a subscriber's path carries less than the track
    arrives with; the publisher's sender takes the smaller of this and its own
    share of its hop's estimate, and forgets the limit when it is not repeated.
    """

    track_id: int
    """The video track to limit (32 bits)."""
    max_bps: int
    """Most bits per second the track (or its ``layer``) should send (32 bits).
    For a layer, 0 says nobody is forwarded the layer (do not encode it) and
    :data:`NO_LIMIT_BPS` that it is needed at whatever rate it has."""
    layer: int | None = None
    """None: the whole track (a single-layer publisher). Otherwise the
    simulcast spatial layer (0 to :data:`MAX_SPATIAL_LAYERS` - 1) this is
    about: which layers the SFU's subscribers need, and at what rate."""

    def serialize(self) -> bytes:
        """The datagram bytes: exactly 10 of them."""
        if self.layer is None:
            selector = 0
        elif 0 <= self.layer < MAX_SPATIAL_LAYERS:
            selector = _LAYER_LIMIT_FLAG | self.layer
        else:
            raise LocalProtocolError(
                f"rate limit for layer {self.layer}: layers are 0 to "
                f"{MAX_SPATIAL_LAYERS - 1}",
                ErrorCode.INVALID_ARGUMENT,
            )
        return pack(
            _RATE_LIMIT,
            "rate limit",
            first_byte(PacketKind.RATE_LIMIT),
            selector,
            self.track_id,
            self.max_bps,
        )


Packet = (
    AudioPacket
    | VideoPacket
    | FeedbackPacket
    | ProbePacket
    | KeyframeRequest
    | NackPacket
    | RateLimit
)


def rewrite_transport_seq(buf: bytearray, seq: int) -> None:
    """Overwrite the transport sequence number of a serialized audio, video or
    probe datagram in place (2 bytes at offset 2); ``seq`` is taken modulo 2**16.

    This is the SFU's only per-hop change to forwarded media.
    """
    if len(buf) < 4 or buf[0] not in _WITH_TRANSPORT_SEQ:
        raise PacketError("datagram carries no transport sequence number")
    _U16.pack_into(buf, TRANSPORT_SEQ_OFFSET, seq & 0xFFFF)


def parse_packet(data: bytes | bytearray | memoryview) -> Packet:
    """Parse one datagram. Media payloads are views into ``data``, not copies.

    Raises :class:`PacketError` (and nothing else) for any malformed input.
    """
    view = memoryview(data)
    if not view:
        raise PacketError("empty datagram")
    first = view[0]
    if first >> 6 != VERSION:
        raise PacketError(f"unsupported header version {first >> 6}")
    kind = (first >> 3) & 0b111
    flags = first & 0b111
    if kind == PacketKind.VIDEO:
        return _parse_video(view, flags)
    if kind == PacketKind.AUDIO:
        return _parse_audio(view)
    if kind == PacketKind.FEEDBACK:
        return parse_feedback(view)
    if kind == PacketKind.PROBE:
        return _parse_probe(view)
    if kind == PacketKind.KEYFRAME_REQUEST:
        return _parse_keyframe_request(view)
    if kind == PacketKind.NACK:
        return parse_nack(view)
    if kind == PacketKind.RATE_LIMIT:
        return _parse_rate_limit(view)
    raise PacketError(f"unknown packet kind {kind}")


def _media_payload(view: memoryview, header_size: int, what: str) -> memoryview:
    if len(view) < header_size:
        raise PacketError(f"{what} datagram of {len(view)} bytes is truncated")
    payload = view[header_size:]
    if len(payload) > MAX_MEDIA_PAYLOAD:
        raise PacketError(f"{what} payload of {len(payload)} bytes is too large")
    return payload


def _parse_audio(view: memoryview) -> AudioPacket:
    payload = _media_payload(view, _AUDIO.size, "audio")
    _, level_byte, transport_seq, track_id, seq, timestamp = _AUDIO.unpack_from(view)
    return AudioPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=transport_seq,
        timestamp=timestamp,
        level=level_byte & 0x7F,
        voice_activity=bool(level_byte & _VOICE_ACTIVITY),
        payload=payload,
    )


def _parse_video(view: memoryview, flags: int) -> VideoPacket:
    payload = _media_payload(view, _VIDEO.size, "video")
    (_, layer, transport_seq, track_id, seq, timestamp, frame_number, index, count) = (
        _VIDEO.unpack_from(view)
    )
    if not 0 <= index < count <= MAX_FRAGMENTS:
        raise PacketError(f"fragment {index} of {count} is not a valid position")
    if not payload:
        raise PacketError("video fragment has no payload")
    return VideoPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=transport_seq,
        timestamp=timestamp,
        frame_number=frame_number,
        fragment_index=index,
        fragment_count=count,
        keyframe=bool(flags & _KEYFRAME_FLAG),
        layer=layer,
        payload=payload,
    )


def _parse_probe(view: memoryview) -> ProbePacket:
    payload = _media_payload(view, _PROBE.size, "probe")
    _, cluster_id, transport_seq = _PROBE.unpack_from(view)
    return ProbePacket(cluster_id, transport_seq, len(payload))


def _parse_rate_limit(view: memoryview) -> RateLimit:
    if len(view) != _RATE_LIMIT.size:
        raise PacketError(f"rate limit of {len(view)} bytes, expected 10")
    _, selector, track_id, max_bps = _RATE_LIMIT.unpack_from(view)
    if not selector & _LAYER_LIMIT_FLAG:
        return RateLimit(track_id, max_bps)  # the rest is reserved: ignored
    if selector & _LAYER_RESERVED_BITS:
        raise PacketError(f"rate limit layer byte {selector:#04x} sets reserved bits")
    layer = selector & 0x0F
    if layer >= MAX_SPATIAL_LAYERS:
        raise PacketError(f"rate limit for unknown layer {layer}")
    return RateLimit(track_id, max_bps, layer)


def _parse_keyframe_request(view: memoryview) -> KeyframeRequest:
    if len(view) != _KEYFRAME_REQUEST.size:
        raise PacketError(f"keyframe request of {len(view)} bytes, expected 6")
    _, layer, track_id = _KEYFRAME_REQUEST.unpack_from(view)
    return KeyframeRequest(track_id, layer)
