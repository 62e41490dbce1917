"""Receiving audio: one jitter buffer and decoder per speaker, one mix.

On the event loop each audio datagram goes into its speaker's
:class:`AudioReceiver` (:meth:`AudioReceiver.push`). The sink's playout clock
(a device callback or the WAV sink's thread) calls :meth:`AudioPlayout.pull`
every 20 ms: each receiver asks its jitter buffer what to play, decodes it
(Opus, FEC or PLC), and the mixer sums the speakers with their volumes and a
limiter. A listener (the echo canceller's reference) may watch each mixed
frame as it goes out.

Stamped test audio (the tone source) starts a buzz on every whole second of
``time.time()``; where a buzz begins in a decoded frame, at the time the frame
is pulled, gives the mouth-to-ear latency (``stamped_latency_ms``, which means
nothing for other sources).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from codec.media import AudioPacket
from codec.media.audio import (
    FRAME_SAMPLES,
    AudioCodecError,
    JitterBuffer,
    Mixer,
    OnsetDetector,
    OpusDecoder,
    PlayoutKind,
)
from codec.messages import RoomTrack

from .receiver import percentile

__all__ = ["AudioPlayout", "AudioReceiver", "PlayoutSync"]


class PlayoutSync(Protocol):
    """What a receiver needs of its speaker's lip sync
    (:class:`~client.media.lip_sync.LipSync`, or the audio process's proxy)."""

    def audio_delay_wanted_s(self) -> float | None:
        """How long video wants this audio held, seconds (None: no wish)."""

    def audio_played(self, timestamp: int, heard_after_s: float = 0.0) -> None:
        """A speech frame with 48 kHz ``timestamp`` is pulled now."""

    def stats_dict(self) -> dict[str, object]:
        """The measured audio/video offsets."""


class AudioReceiver:
    """One remote speaker's audio track: jitter buffer, decoder, stats."""

    def __init__(self, track: RoomTrack, lip_sync: PlayoutSync | None = None) -> None:
        self.track = track
        self.lip_sync = lip_sync
        """The speaker's lip sync (their video waits for this audio)."""
        self.buffer = JitterBuffer()
        self.decoder = OpusDecoder()
        self.corrupt = 0
        self.last_level = 127
        self.speaking = False
        self._lock = threading.Lock()
        self._onsets = OnsetDetector()
        self._latencies_ms: deque[float] = deque(maxlen=200)

    def push(self, packet: AudioPacket, now: float) -> None:
        """Take a datagram that arrived at ``now`` (``time.time()`` seconds)."""
        self.last_level = packet.level
        self.speaking = packet.voice_activity
        with self._lock:
            self.buffer.push(
                packet.seq, packet.timestamp, packet.payload, packet.voice_activity, now
            )

    def pull(self, now: float, heard_after_s: float = 0.0) -> np.ndarray:
        """The frame to play at ``now``: decoded, recovered or concealed;
        ``heard_after_s``: the device's delay before it is heard (lip sync
        counts from then)."""
        sync = self.lip_sync
        with self._lock:
            if sync is not None:
                wanted = sync.audio_delay_wanted_s()
                # The device adds its own delay after the pull.
                self.buffer.sync_delay_s = (
                    None if wanted is None else wanted - heard_after_s
                )
            decision = self.buffer.pop(now)
        if sync is not None and decision.voice and decision.timestamp is not None:
            sync.audio_played(decision.timestamp, heard_after_s)
        try:
            if decision.kind is PlayoutKind.NORMAL:
                frame = self.decoder.decode(decision.payload or b"")
            elif decision.kind is PlayoutKind.FEC:
                frame = self.decoder.decode_fec(decision.payload or b"")
            elif decision.kind is PlayoutKind.CONCEAL:
                frame = self.decoder.conceal()
            else:
                frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        except AudioCodecError:
            self.corrupt += 1
            frame = self.decoder.conceal()
        self._note_stamp(frame, now)
        return frame

    def _note_stamp(self, frame: np.ndarray, now: float) -> None:
        onset = self._onsets.feed(frame, now)
        if onset is not None:
            self._latencies_ms.append((onset % 1.0) * 1000.0)

    def close(self) -> None:
        self.decoder.close()

    def stats_dict(self) -> dict[str, object]:
        """Per-speaker counters and delays as plain values for a stats file."""
        with self._lock:
            stats = self.buffer.stats
            delays = list(stats.delays_ms)
            values: dict[str, object] = {
                "user": self.track.owner,
                "kind": self.track.kind,
                "track_id": self.track.track_id,
                "packets_received": stats.received,
                "packets_lost": stats.lost,
                "packets_late": stats.late,
                "duplicates": stats.duplicates,
                "frames_played": stats.played,
                "frames_concealed": stats.concealed,
                "frames_fec_recovered": stats.fec_recovered,
                "frames_accelerated": stats.accelerated,
                "frames_stretched": stats.stretched,
                "corrupt": self.corrupt,
                "target_delay_ms": round(self.buffer.target_delay_s * 1000.0, 1),
            }
        latencies = list(self._latencies_ms)
        values["jitter_buffer_delay_ms"] = {
            "p50": _rounded(percentile(delays, 50)),
            "p95": _rounded(percentile(delays, 95)),
        }
        if self.lip_sync is not None:
            values["av_offset_ms"] = self.lip_sync.stats_dict()
        values["stamped_latency_ms"] = {
            "count": len(latencies),
            "p50": _rounded(percentile(latencies, 50)),
            "p95": _rounded(percentile(latencies, 95)),
        }
        return values


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


class AudioPlayout:
    """Mixes every speaker's receiver into the frames the sink plays.

    ``on_played(frame)`` (optional) sees each mixed frame as it goes out: the
    echo canceller's far-end reference.
    """

    def __init__(self, on_played: Callable[[np.ndarray], None] | None = None) -> None:
        self.mixer = Mixer()
        self.on_played = on_played
        self.output_delay_s = 0.0
        """The sink's delay from pull to sound (set when it starts)."""
        self.frames = 0
        self._receivers: dict[int, AudioReceiver] = {}
        self._lock = threading.Lock()

    def add(self, receiver: AudioReceiver) -> None:
        with self._lock:
            self._receivers[receiver.track.track_id] = receiver

    def remove(self, track_id: int) -> AudioReceiver | None:
        with self._lock:
            return self._receivers.pop(track_id, None)

    def pull(self, now: float) -> np.ndarray:
        """The next 20 ms of the mix (call from the sink's playout clock)."""
        with self._lock:
            receivers = list(self._receivers.values())
        delay = self.output_delay_s
        frames = {r.track.owner: r.pull(now, delay) for r in receivers}
        mixed = self.mixer.mix(frames)
        self.frames += 1
        if self.on_played is not None:
            self.on_played(mixed)
        return mixed
