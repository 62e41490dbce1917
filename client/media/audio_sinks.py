"""Where received audio goes: the speaker, or a WAV file of what would play.

A sink owns the playout clock: once :meth:`AudioSink.start` ed it calls
``pull(now)`` for every 20 ms frame, from a device callback (speaker) or its
own thread paced on real time (WAV). The ``--play`` spec picks one:
``speaker[:DEVICE]``, ``wav:PATH``, ``none``.
"""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

from .audio_devices import Speaker
from .errors import SinkError

__all__ = ["AudioSink", "SpeakerSink", "WavSink", "parse_audio_sink"]

Pull = Callable[[float], np.ndarray]
_FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


class AudioSink(Protocol):
    """Plays (or records) the mix, pulling one 20 ms frame at a time."""

    def start(self, pull: Pull) -> None:
        """Start calling ``pull(now)`` (``time.time()`` seconds) every 20 ms."""

    def stop(self) -> None:
        """Stop pulling and release the device or file."""

    def report(self) -> dict[str, object]:
        """What was played, as plain values for a stats file."""

    @property
    def output_delay_s(self) -> float:
        """How long after it is pulled a frame is heard (the device's own
        buffer; 0 for a file), seconds: lip sync counts from then."""


class WavSink:
    """Writes what would be played to a 48 kHz mono 16-bit WAV file."""

    output_delay_s = 0.0
    """A file "hears" a frame when it is pulled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self.late_pulls = 0
        """Frames pulled a frame or more after they were due (a busy machine)."""
        self.max_late_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wav: wave.Wave_write | None = None

    def start(self, pull: Pull) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            wav = wave.open(str(self.path), "wb")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc}") from None
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        self._wav = wav
        self._thread = threading.Thread(
            target=self._run, args=(pull, wav), name="audio-wav-sink", daemon=True
        )
        self._thread.start()

    def _run(self, pull: Pull, wav: wave.Wave_write) -> None:
        due = time.time()
        while not self._stop.is_set():
            now = time.time()
            if due > now:
                self._stop.wait(due - now)
                continue
            # Late (a busy machine): catch up, so the file keeps real time as a
            # device with a deeper buffer would.
            if now - due >= _FRAME_S:
                self.late_pulls += 1
            self.max_late_s = max(self.max_late_s, now - due)
            frame = pull(now)
            wav.writeframes(frame.astype("<i2").tobytes())
            self.frames += 1
            due += _FRAME_S

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def report(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "seconds": self.frames * _FRAME_S,
            "late_pulls": self.late_pulls,
            "max_late_ms": round(self.max_late_s * 1000.0, 1),
        }


class SpeakerSink:
    """Plays on an output device (``None``: the default one), buffering
    ``latency_s`` (None: from :data:`~client.media.audio_devices.DEVICE_LATENCY_S`
    up as the device needs)."""

    def __init__(
        self, device: str | None = None, *, latency_s: float | None = None
    ) -> None:
        self.device = device
        self.latency_s = latency_s
        self._speaker: Speaker | None = None
        self.frames = 0

    def start(self, pull: Pull) -> None:
        def counted(now: float) -> np.ndarray:
            self.frames += 1
            return pull(now)

        self._speaker = Speaker(self.device, counted, latency_s=self.latency_s)
        self._speaker.start()

    @property
    def output_delay_s(self) -> float:
        """The output latency PortAudio reports for the open device."""
        return self._speaker.output_latency_s if self._speaker is not None else 0.0

    def stop(self) -> None:
        if self._speaker is not None:
            self._speaker.stop()

    def report(self) -> dict[str, object]:
        speaker = self._speaker
        return {
            "device": None if speaker is None else speaker.index,
            "device_rate": None if speaker is None else speaker.rate,
            "seconds": self.frames * _FRAME_S,
            "underflows": None if speaker is None else speaker.underflows,
            "latency_ms": None if speaker is None else round(speaker.latency_s * 1e3),
            "latency_steps": [] if speaker is None else speaker.step_report(),
        }


def parse_audio_sink(spec: str) -> AudioSink | None:
    """The sink a ``--play`` spec names; ``None`` for ``none``. Raises
    :class:`ValueError` for a spec it does not know."""
    kind, _, arg = spec.partition(":")
    if kind == "none" and not arg:
        return None
    if kind == "wav" and arg:
        return WavSink(Path(arg))
    if kind == "speaker":
        return SpeakerSink(arg or None)
    raise ValueError(f"unknown audio sink {spec!r}: speaker[:DEVICE], wav:PATH, none")
