"""What the engine and its audio process say to each other.

Each message is one record of a :class:`~codec.media.audio.ring.ByteRing`:
a msgpack array, tagged with its type. Down (engine to audio process): the
devices to open, the tracks to play, every audio datagram as it arrived,
volumes, mutes and lip sync's wanted delay. Up: whether a device opened, each
captured 20 ms frame, lip sync's "played" marks and, four times a second, the
counters the engine shows.
"""

from __future__ import annotations

import msgspec

from codec.media.audio import ByteRing

__all__ = [
    "AddTrack",
    "Captured",
    "CloseDevice",
    "DeviceStep",
    "DeviceState",
    "Down",
    "OpenDevice",
    "Packet",
    "Played",
    "RemoveTrack",
    "SetSyncDelay",
    "SetVolume",
    "Stats",
    "Up",
    "decode_down",
    "decode_up",
    "encode",
    "split_rings",
]


class _Message(msgspec.Struct, frozen=True, array_like=True, tag=True):
    pass


class OpenDevice(_Message, frozen=True):
    """Open the ``speaker`` (``output``) or the microphone named ``device``
    (``""``: the default) with ``latency_s`` of device buffer (None: the
    client's default); ``clean``: run the capture chain (echo cancellation,
    noise suppression, gain) on what it captures."""

    output: bool
    device: str
    latency_s: float | None
    clean: bool = True


class CloseDevice(_Message, frozen=True):
    """Close the speaker (``output``) or the microphone."""

    output: bool


class AddTrack(_Message, frozen=True):
    """Play ``owner``'s track ``track_id`` in the mix."""

    track_id: int
    owner: str


class RemoveTrack(_Message, frozen=True):
    track_id: int


class Packet(_Message, frozen=True):
    """One audio datagram of a track, as it arrived at ``arrival_s``
    (``time.time()`` seconds, stamped by the engine)."""

    track_id: int
    seq: int
    timestamp: int
    voice: bool
    payload: bytes
    arrival_s: float


class SetVolume(_Message, frozen=True):
    """``user``'s volume (0.0-2.0) and whether they are muted for us."""

    user: str
    volume: float
    muted: bool


class SetSyncDelay(_Message, frozen=True):
    """How long lip sync wants ``track_id``'s audio held, seconds (None:
    no wish)."""

    track_id: int
    delay_s: float | None


Down = (
    OpenDevice
    | CloseDevice
    | AddTrack
    | RemoveTrack
    | Packet
    | SetVolume
    | SetSyncDelay
)


class DeviceState(_Message, frozen=True):
    """The speaker (``output``) or microphone opened (``error`` empty) or
    could not (``error`` says why, for people); ``latency_s``: what the
    device reports it buffers."""

    output: bool
    error: str
    latency_s: float = 0.0


class Captured(_Message, frozen=True):
    """20 ms of 48 kHz mono int16 (little-endian) captured at
    ``capture_s`` (``time.time()`` seconds of its first sample), cleaned
    when the microphone was opened with ``clean``."""

    samples: bytes
    capture_s: float


class Played(_Message, frozen=True):
    """A speech frame of ``track_id`` with unwrapped 48 kHz ``timestamp`` is
    heard at ``heard_s`` (``time.time()`` seconds)."""

    track_id: int
    timestamp: int
    heard_s: float


class DeviceStep(msgspec.Struct, frozen=True, array_like=True):
    """The speaker's (``output``) or microphone's device buffer changed
    ``after_s`` seconds after the device opened, from ``from_ms`` to
    ``to_ms`` milliseconds, for ``reason`` (``glitch``: an underrun or
    overrun; ``calm``: a long calm period)."""

    output: bool
    after_s: float
    from_ms: float
    to_ms: float
    reason: str


class Stats(_Message, frozen=True):
    """The audio process's counters: ``tracks`` by track id (the receiver's
    stats dict, its ``played_dbov`` added), the speaker's seconds played
    and underruns, the microphone's overruns and frames dropped (the
    capture ring was full), the records the engine's ring refused, the
    last onsets of stamped audio (``time.time()`` seconds) in the capture
    callback and in the playback callback (mouth-to-ear), each device's
    buffer now (milliseconds, 0 when closed) and its last changes."""

    tracks: dict[int, dict[str, object]]
    speaker_s: float
    underruns: int
    overruns: int
    dropped: int
    refused: int
    capture_onsets: list[float] = []
    play_onsets: list[float] = []
    speaker_latency_ms: float = 0.0
    microphone_latency_ms: float = 0.0
    latency_steps: list[DeviceStep] = []


Up = DeviceState | Captured | Played | Stats

_encoder = msgspec.msgpack.Encoder()
_down = msgspec.msgpack.Decoder(Down)
_up = msgspec.msgpack.Decoder(Up)


def encode(message: Down | Up) -> bytes:
    """The record for ``message``."""
    return _encoder.encode(message)


def decode_down(record: bytes) -> Down:
    """A record the engine wrote (raises :class:`msgspec.DecodeError`)."""
    return _down.decode(record)


def decode_up(record: bytes) -> Up:
    """A record the audio process wrote (raises :class:`msgspec.DecodeError`)."""
    return _up.decode(record)


def split_rings(
    block: memoryview, down_bytes: int, *, reset: bool
) -> tuple[ByteRing, ByteRing]:
    """The (down, up) rings of a shared block: down first, ``down_bytes``
    long, up the rest (``reset`` by the block's creator only)."""
    down = ByteRing(block[:down_bytes], reset=reset)
    up = ByteRing(block[down_bytes:], reset=reset)
    return down, up
