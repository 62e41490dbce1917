"""Where local audio comes from: tone, WAV file, silence, microphone.

A source is driven from the audio sender's thread: :meth:`AudioSource.open`,
then :meth:`AudioSource.read` in a loop (it blocks until the next 20 ms frame
is due and returns it with its capture time), then :meth:`AudioSource.close`.
The ``--audio`` spec picks one: ``tone``, ``wav:PATH``, ``silence``,
``mic[:DEVICE]``.

The tone is *stamped*: a 200 ms voiced buzz starts on every whole second of
``time.time()``, silence between. A receiver on the same clock measures
mouth-to-ear latency from where each buzz begins in what it plays.
"""

from __future__ import annotations

import queue
import time
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

from .audio_devices import Microphone, mic_timeout_s
from .errors import SourceError

__all__ = [
    "AudioSource",
    "MicSource",
    "SilenceSource",
    "ToneSource",
    "WavSource",
    "parse_audio_source",
    "read_wav",
]

_FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
BEEP_S = 0.2
"""Length of each stamped buzz of the tone source."""


class AudioSource(Protocol):
    """20 ms frames of 48 kHz mono int16 at the pace of real time."""

    stamped: bool
    """Buzzes start on whole seconds of ``time.time()`` (mouth-to-ear)."""

    def open(self) -> None:
        """Acquire the device or file; called on the sender's thread."""

    def read(self) -> tuple[np.ndarray, float]:
        """Block until the next frame is due; return it and its capture time
        (``time.time()`` seconds of its first sample). Raises
        :class:`~client.media.errors.SourceError`."""

    def close(self) -> None:
        """Release the device or file."""


def read_wav(path: Path) -> np.ndarray:
    """A mono 16-bit WAV file as 48 kHz int16 samples (resampled with soxr,
    channels averaged). Raises :class:`SourceError` on anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise SourceError(f"{path}: only 16-bit PCM WAV is supported")
            rate, channels = wav.getframerate(), wav.getnchannels()
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    samples = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return np.asarray(samples, dtype=np.int16)


class _Paced:
    """Frames due every 20 ms from ``open``; after a stall it starts again
    from now rather than bursting."""

    def __init__(self) -> None:
        self._next = 0.0

    def open(self) -> None:
        self._next = time.time()

    def wait(self) -> float:
        now = time.time()
        if self._next > now:
            time.sleep(self._next - now)
        elif now - self._next > 0.1:
            self._next = now
        due = self._next
        self._next += _FRAME_S
        return due

    def close(self) -> None:
        pass


def buzz(samples: int, offset: int = 0) -> np.ndarray:
    """A voiced 150 Hz buzz (harmonics falling 1/k), speech-like enough for
    the VAD; ``offset`` is the sample index of its start (for phase)."""
    t = (np.arange(samples) + offset) / SAMPLE_RATE
    harmonics = np.arange(1, 16)[:, None]
    wave_ = np.sum(np.sin(2 * np.pi * 150 * harmonics * t) / harmonics, axis=0)
    return (wave_ * 5000).astype(np.int16)


class ToneSource(_Paced):
    """The stamped test source: a 200 ms buzz on every whole second."""

    stamped = True

    def read(self) -> tuple[np.ndarray, float]:
        start = self.wait()
        first = round(start * SAMPLE_RATE)
        index = np.arange(first, first + FRAME_SAMPLES)
        in_second = index % SAMPLE_RATE
        frame = np.where(
            in_second < BEEP_S * SAMPLE_RATE, buzz(FRAME_SAMPLES, int(first)), 0
        )
        return frame.astype(np.int16), start


class SilenceSource(_Paced):
    """Digital silence: exercises DTX and keep-alives."""

    stamped = False

    def read(self) -> tuple[np.ndarray, float]:
        return np.zeros(FRAME_SAMPLES, dtype=np.int16), self.wait()


class WavSource(_Paced):
    """A WAV file played once, then silence (``loop``: over and over)."""

    stamped = False

    def __init__(self, path: Path, *, loop: bool = False) -> None:
        super().__init__()
        self.path = path
        self.loop = loop
        self._samples = np.zeros(0, dtype=np.int16)
        self._position = 0

    def open(self) -> None:
        self._samples = read_wav(self.path)
        self._position = 0
        super().open()

    def read(self) -> tuple[np.ndarray, float]:
        start = self.wait()
        chunk = self._samples[self._position : self._position + FRAME_SAMPLES]
        self._position += FRAME_SAMPLES
        if self.loop and self._position >= self._samples.size:
            self._position = 0
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame[: chunk.size] = chunk
        return frame, start


class MicSource:
    """A microphone through :class:`~client.media.audio_devices.Microphone`."""

    stamped = False

    def __init__(
        self, device: str | None = None, *, latency_s: float | None = None
    ) -> None:
        self.device = device
        self.latency_s = latency_s
        self._frames: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(50)
        self._mic: Microphone | None = None
        self._started = False
        self.dropped = 0

    def open(self) -> None:
        self._mic = Microphone(self.device, self._on_frame, latency_s=self.latency_s)
        self._started = False
        self._mic.start()

    @property
    def overflows(self) -> int:
        """Times the device had more input than its callback took in time."""
        return self._mic.overflows if self._mic is not None else 0

    def _on_frame(self, frame: np.ndarray, capture_s: float) -> None:
        try:
            self._frames.put_nowait((frame, capture_s))
        except queue.Full:
            self.dropped += 1

    def read(self) -> tuple[np.ndarray, float]:
        timeout = mic_timeout_s(self._started)
        try:
            item = self._frames.get(timeout=timeout)
        except queue.Empty:
            raise SourceError(
                f"the microphone delivered nothing for {timeout:g} s"
            ) from None
        self._started = True
        return item

    def close(self) -> None:
        if self._mic is not None:
            self._mic.stop()
            self._mic = None


def parse_audio_source(spec: str) -> AudioSource | None:
    """The source a ``--audio`` spec names; ``None`` for ``none``. Raises
    :class:`ValueError` for a spec it does not know."""
    kind, _, arg = spec.partition(":")
    if kind == "none" and not arg:
        return None
    if kind == "tone" and not arg:
        return ToneSource()
    if kind == "silence" and not arg:
        return SilenceSource()
    if kind == "wav" and arg:
        return WavSource(Path(arg))
    if kind == "mic":
        return MicSource(arg or None)
    raise ValueError(
        f"unknown audio source {spec!r}: tone, wav:PATH, silence, mic[:DEVICE], none"
    )
