"""Microphones and speakers through sounddevice (PortAudio).

The one module that imports sounddevice. Inside the client audio is 48 kHz
mono int16 in 20 ms frames; a device that will not run at 48 kHz runs at its
own default rate and soxr converts on the way. Without PortAudio, or without
the device asked for, opening raises :class:`AudioUnavailable` with a message
for people and the rest of the client carries on.

:class:`Microphone` hands each captured 20 ms frame to a callback (on
PortAudio's thread: the callback must only queue it). :class:`Speaker` asks a
``pull`` function for each 20 ms frame from PortAudio's callback.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from codec.media.audio import (
    FRAME_SAMPLES,
    MICROPHONE_LADDER_S,
    SAMPLE_RATE,
    SPEAKER_LADDER_S,
)

from .device_stream import DeviceStream
from .errors import AudioUnavailable

__all__ = ["AudioDevice", "Microphone", "Speaker", "list_audio_devices"]


ALSA_DEFAULT_CONFIG = Path("/usr/share/alsa/alsa.conf")
"""ALSA's own top-level configuration (where Debian and most distributions
install it); our file is read after it."""
ALSA_PULSE_CONFIG = Path(__file__).with_name("alsa_pulse.conf")


def _configure_alsa() -> None:
    """Have ALSA read :data:`ALSA_PULSE_CONFIG` after its own files: the
    ``pulse`` device then leaves underruns to PulseAudio instead of stalling
    PortAudio for 1.5 s after each (``docs/audio.md``, *Underruns*).

    ALSA reads ``ALSA_CONFIG_PATH`` when PortAudio initializes (on importing
    sounddevice), and again only if a file changes; the variable stays set so
    that the processes we start (the audio process) read the same."""
    paths = os.environ.get("ALSA_CONFIG_PATH")
    if paths is None:
        if not ALSA_DEFAULT_CONFIG.exists():
            return
        paths = str(ALSA_DEFAULT_CONFIG)
    if str(ALSA_PULSE_CONFIG) not in paths.split(":"):
        os.environ["ALSA_CONFIG_PATH"] = f"{paths}:{ALSA_PULSE_CONFIG}"


def _sounddevice() -> ModuleType:
    if "sounddevice" not in sys.modules:
        _configure_alsa()
    try:
        import sounddevice
    except OSError as exc:  # the module loads, PortAudio does not
        raise AudioUnavailable(
            f"audio is off: PortAudio is not installed ({exc}); install libportaudio2"
        ) from None
    return sounddevice


@dataclass(frozen=True, slots=True)
class AudioDevice:
    """One PortAudio device as the pickers show it."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: int
    default_input: bool = False
    default_output: bool = False


def list_audio_devices() -> list[AudioDevice]:
    """Every input and output device PortAudio sees (may be empty)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise AudioUnavailable(f"audio is off: {exc}") from None
    return [
        AudioDevice(
            index,
            str(info["name"]),
            int(info["max_input_channels"]),
            int(info["max_output_channels"]),
            int(info["default_samplerate"]),
            index == default_in,
            index == default_out,
        )
        for index, info in enumerate(devices)
    ]


def _resolve(
    sd: ModuleType, spec: str | None, output: bool, rate: int | None
) -> tuple[int, int]:
    """(device index, the rate to open it at) for a name, index or default;
    ``rate`` forces a device rate (else 48 kHz when the device takes it)."""
    what = "speaker" if output else "microphone"
    channels = "max_output_channels" if output else "max_input_channels"
    try:
        devices = sd.query_devices()
        if spec is None or spec == "":
            default = sd.default.device[1 if output else 0]
            if default is None or default < 0:
                raise AudioUnavailable(f"audio is off: no default {what}")
            index = int(default)
        elif spec.isdigit():
            index = int(spec)
        else:
            matches = [
                i
                for i, d in enumerate(devices)
                if spec.lower() in str(d["name"]).lower() and d[channels] > 0
            ]
            if not matches:
                raise AudioUnavailable(f"audio is off: no {what} named {spec!r}")
            index = matches[0]
        if not 0 <= index < len(devices) or devices[index][channels] < 1:
            raise AudioUnavailable(f"audio is off: no {what} {spec!r}")
        check = sd.check_output_settings if output else sd.check_input_settings
        try:
            wanted = rate or SAMPLE_RATE
            check(device=index, channels=1, samplerate=wanted, dtype="int16")
            rate = wanted
        except (sd.PortAudioError, ValueError):
            rate = int(devices[index]["default_samplerate"])
    except sd.PortAudioError as exc:
        raise AudioUnavailable(f"audio is off: {exc}") from None
    return index, rate


MIC_START_S = 5.0
"""How long a microphone may take to deliver its first frame, seconds.

A PulseAudio null sink that nothing plays to sleeps in blocks of up to 2 s
(its largest latency), and a capture stream opened on its monitor gets its
first sound only when the current block ends: measured 2.0 s after the
stream started, on a null sink just created. A 1 s limit ended the talker's
track before its first frame in some runs (the mouth-to-ear test)."""
MIC_STALL_S = 2.0
"""How long a running microphone may deliver nothing before it counts as
gone (its track ends), seconds: above the 1.5 s PortAudio 19.6 took to
resume a speaker after an ALSA xrun (``docs/audio.md``). A capture stopped
for 0.6 s resumed at once here; the margin is for devices that do not."""


def mic_timeout_s(started: bool) -> float:
    """How long to wait for a microphone's next frame (``started``: it has
    delivered one already), seconds."""
    return MIC_STALL_S if started else MIC_START_S


DEVICE_LATENCY_S = SPEAKER_LADDER_S[0]
"""The device buffer a speaker starts with, seconds, when the caller does
not fix one (``latency_s``, the app's ``audio_buffer_ms`` setting): 40 ms,
then more after an underrun (:class:`~codec.media.audio.DeviceLatency`;
``docs/audio.md``, *Device buffers*). It adds to mouth-to-ear, which the
issue's figure (capture to playback callback) does not count."""


STARVED_SLACK = 0.5
"""How far a speaker's callback may run behind the sound handed over before
it counts as an underrun, as a share of the device buffer: the count starts
at the first callback, but the device starts playing only once PortAudio
has filled part of its buffer, so a callback a little behind the count is
not yet a gap (with 20 ms, one run at load 11 counted 10 in 31 s)."""
WARMUP_S = 2.5
"""A stream's first seconds: PortAudio and PulseAudio start slowly and fill
the buffer before anything plays, so a slow callback is not yet a gap. A
PulseAudio null sink that was idle holds the first callbacks back for up to
its 2 s sleep (measured 1.6-1.8 s after the first one): no gap either."""


class Microphone(DeviceStream):
    """Captures 48 kHz mono frames from an input device (``rate``: run the
    device at another rate and resample).

    ``on_frame(frame, capture_s)`` gets each 20 ms int16 frame with the time
    (``time.time()`` seconds) its first sample was captured.
    """

    _output = False
    _what = "microphone"

    def __init__(
        self,
        device: str | None,
        on_frame: Callable[[np.ndarray, float], None],
        *,
        rate: int | None = None,
        latency_s: float | None = None,
    ) -> None:
        sd = _sounddevice()
        index, rate = _resolve(sd, device, False, rate)
        super().__init__(sd, index, rate, latency_s, MICROPHONE_LADDER_S)
        self.on_frame = on_frame
        self.overflows = 0

    def _callback(self, data: np.ndarray, frames: int, times: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
            self._glitch()
        now = time.time()
        samples = data[:, 0]
        self._note_level(samples)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._pending = np.concatenate((self._pending, samples))
        while self._pending.size >= FRAME_SAMPLES:
            frame, self._pending = (
                self._pending[:FRAME_SAMPLES].copy(),
                self._pending[FRAME_SAMPLES:],
            )
            self.on_frame(frame, now - self._pending.size / SAMPLE_RATE)

    def _switched(self, stream: Any) -> None:
        # A part frame of the old stream would join the new one's samples.
        self._pending = self._pending[:0]


class Speaker(DeviceStream):
    """Plays 48 kHz mono frames on an output device (``rate``: run the device
    at another rate and resample).

    ``pull(now)`` returns the next 20 ms int16 frame; it runs in PortAudio's
    callback, so it must be quick and never block.
    """

    _output = True
    _what = "speaker"

    def __init__(
        self,
        device: str | None,
        pull: Callable[[float], np.ndarray],
        *,
        rate: int | None = None,
        latency_s: float | None = None,
    ) -> None:
        sd = _sounddevice()
        index, rate = _resolve(sd, device, True, rate)
        super().__init__(sd, index, rate, latency_s, SPEAKER_LADDER_S)
        self.pull = pull
        self.output_latency_s = 0.0
        """What PortAudio reports once the stream is open: how long a frame
        waits in the device before it is heard, seconds."""
        self.underflows = 0
        """Times the device ran dry: PortAudio said so, or a callback came
        later than the sound handed over so far lasts (see
        :data:`STARVED_SLACK`)."""
        self.callbacks = 0
        self._anchor_s: float | None = None
        self._first_s = 0.0
        self._delivered_s = 0.0
        self.on_block: Callable[[np.ndarray, float], None] | None = None
        """Sees each block as it goes to the device (at the device's rate)
        with the time its callback began: where stamped audio is heard."""

    def _callback(self, out: np.ndarray, frames: int, times: Any, status: Any) -> None:
        called = time.time()
        self.callbacks += 1
        if self._starved(called) or status.output_underflow:
            self.underflows += 1
            self._glitch()
        while self._pending.size < frames:
            frame = self.pull(time.time())
            if self._resampler is not None:
                frame = self._resampler.resample_chunk(frame)
            self._pending = np.concatenate((self._pending, frame))
        out[:, 0] = self._pending[:frames]
        self._delivered_s += frames / self.rate
        self._pending = self._pending[frames:]
        self._note_level(out[:, 0])
        if self.on_block is not None:
            self.on_block(out[:, 0], called)

    def _switched(self, stream: Any) -> None:
        # The new stream's timing starts afresh, its warm-up included.
        self.output_latency_s = float(stream.latency)
        self._anchor_s = None
        self._delivered_s = 0.0

    def _starved(self, called: float) -> bool:
        # The device plays in real time what we handed over since the
        # anchor: a callback after all of it has played means it ran dry.
        # PulseAudio (its ALSA device does not report underruns: see
        # alsa_pulse.conf) then plays silence and goes on from there, so we
        # count from here again.
        if self._anchor_s is None:
            self._anchor_s = called
            self._first_s = called
        behind_s = called - self._anchor_s - self._delivered_s
        if behind_s <= STARVED_SLACK * self.latency_s:
            return False
        self._anchor_s = called - self._delivered_s
        return called - self._first_s > WARMUP_S
