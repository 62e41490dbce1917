"""A PortAudio stream whose device buffer adapts while it runs.

What a microphone and a speaker share (:mod:`client.media.audio_devices`
gives the two directions): a stream of 20 ms blocks, with soxr between the
device's rate and 48 kHz when they differ, and, unless the caller fixed the
device buffer, a :class:`~codec.media.audio.DeviceLatency` policy that
starts with a short buffer and changes it when the device glitches or has
long been calm.

PortAudio cannot change a running stream's buffer, so a step opens a second
stream on the same device with the new buffer and starts it first (its
callback writes silence, or drops what it captures, until it takes over);
then, between two callbacks, the new stream takes over and the old one
plays out what it holds and closes. Nothing is cut, and a step up adds the
difference of the two buffers as silence once (the device now holds that
much more). Steps down wait until the sound is quiet (the policy's
``quiet``), where that silence is not heard. The steps run on a keeper
thread of the stream's own, never in PortAudio's callback.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE, DeviceLatency, LatencyStep

from .errors import AudioUnavailable

__all__ = ["QUIET_PEAK", "DeviceStream"]

KEEP_EVERY_S = 0.25
"""How often the keeper asks the policy for a step down (a glitch wakes it
at once)."""
QUIET_PEAK = 328
"""The int16 peak under which a block counts as quiet: -40 dBFS, below
speech and above a microphone's usual noise floor."""
QUIET_S = 0.2
"""How long the sound must have been quiet for a step down, seconds."""
STEPS_KEPT = 20
STANDBY_CALLS = 10
"""Callbacks a new stream runs (in silence) before it takes charge: twice
what fills its first buffer, so it has reached its steady pace."""
STANDBY_MAX_S = 1.0
"""The longest a step waits for that, seconds."""


class DeviceStream(ABC):
    """A device's stream: opened by :meth:`start`, closed by :meth:`stop`.

    ``latency_s`` fixes the device buffer (seconds); None lets it adapt
    along ``ladder_s``. Subclasses say which way audio flows and give the
    stream's :meth:`_callback`, which runs only for the stream in charge.
    """

    _output: bool
    _what: str
    """The device as the error message names it ("microphone", "speaker")."""

    def __init__(
        self,
        sd: ModuleType,
        index: int,
        rate: int,
        latency_s: float | None,
        ladder_s: Sequence[float],
    ) -> None:
        self.sd = sd
        self.index = index
        self.rate = rate
        self.policy: DeviceLatency | None = None
        """The adaptive buffer's policy (None: the buffer is fixed)."""
        if latency_s is None:
            self.policy = DeviceLatency(ladder_s)
            latency_s = self.policy.current_s
        self.latency_s: float = latency_s
        """The device buffer asked of PortAudio now, seconds."""
        self.steps: deque[LatencyStep] = deque(maxlen=STEPS_KEPT)
        """The last changes of the buffer, on :func:`time.monotonic`."""
        self.step_errors = 0
        """Steps the device refused (it would not open with the new buffer)."""
        self.on_step: Callable[[LatencyStep], None] | None = None
        """Hears each step once the new stream has taken over (keeper thread)."""
        self.started_s = 0.0
        """When :meth:`start` opened the stream (:func:`time.monotonic`)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._resampler: Any = None
        self._stream: Any = None
        self._token: object = None
        """The stream in charge: only its callback reads or writes audio."""
        self._switch = threading.Lock()
        self._lifecycle = threading.Lock()
        self._glitches: deque[float] = deque(maxlen=64)
        self._loud_s = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self._standby_calls = 0

    @property
    def glitches(self) -> int:
        """Glitches the policy saw (0 with a fixed buffer)."""
        return 0 if self.policy is None else self.policy.glitches

    def step_report(self) -> list[dict[str, object]]:
        """The last changes of the buffer as plain values: seconds after
        :meth:`start`, from and to in milliseconds, why."""
        return [
            {
                "after_s": round(step.at_s - self.started_s, 1),
                "from_ms": round(step.from_s * 1000.0, 1),
                "to_ms": round(step.to_s * 1000.0, 1),
                "reason": step.reason,
            }
            for step in list(self.steps)
        ]

    def start(self) -> None:
        """Open the stream; its callback starts running on PortAudio's thread."""
        if self.rate != SAMPLE_RATE:
            import soxr

            rates = (
                (SAMPLE_RATE, self.rate) if self._output else (self.rate, SAMPLE_RATE)
            )
            self._resampler = soxr.ResampleStream(*rates, 1, "int16")
        self.started_s = self._loud_s = time.monotonic()
        try:
            token, stream = self._new_stream(self.latency_s)
            self._token, self._stream = token, stream
            self._switched(stream)
            stream.start()
        except self.sd.PortAudioError as exc:
            raise AudioUnavailable(
                f"audio is off: cannot open the {self._what}: {exc}"
            ) from None
        if self.policy is not None:
            self._keeper = threading.Thread(
                target=self._keep, name=f"{self._what}-latency", daemon=True
            )
            self._keeper.start()

    def stop(self) -> None:
        """Close the stream (no callback runs afterwards)."""
        self._stopping.set()
        self._wake.set()
        if self._keeper is not None:
            self._keeper.join()
            self._keeper = None
        with self._lifecycle:
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.stop()
                stream.close()

    def _glitch(self) -> None:
        """An underrun or overrun (PortAudio's thread): the keeper decides."""
        self._glitches.append(time.monotonic())
        self._wake.set()

    def _note_level(self, block: np.ndarray) -> None:
        if block.size and (block.max() > QUIET_PEAK or block.min() < -QUIET_PEAK):
            self._loud_s = time.monotonic()

    @abstractmethod
    def _callback(self, data: np.ndarray, frames: int, times: Any, status: Any) -> None:
        """PortAudio's callback: ``frames`` samples in (or out) through ``data``."""

    @abstractmethod
    def _switched(self, stream: Any) -> None:
        """``stream`` has just taken charge (under the switch lock, or before
        any callback): reset what counted the old one's timing."""

    def _new_stream(self, latency_s: float) -> tuple[object, Any]:
        token = object()
        self._standby_calls = 0

        def callback(data: np.ndarray, frames: int, times: Any, status: Any) -> None:
            with self._switch:
                if token is self._token:
                    self._callback(data, frames, times, status)
                    return
                self._standby_calls += 1
                if self._output:
                    data.fill(0)

        stream_type = self.sd.OutputStream if self._output else self.sd.InputStream
        stream = stream_type(
            device=self.index,
            channels=1,
            samplerate=self.rate,
            dtype="int16",
            blocksize=self.rate * FRAME_SAMPLES // SAMPLE_RATE,
            callback=callback,
            latency=latency_s,
        )
        return token, stream

    def _keep(self) -> None:
        policy = self.policy
        assert policy is not None
        while not self._stopping.is_set():
            self._wake.wait(KEEP_EVERY_S)
            self._wake.clear()
            while self._glitches and not self._stopping.is_set():
                step = policy.glitch(self._glitches.popleft())
                if step is not None:
                    self._apply(step)
            now = time.monotonic()
            step = policy.calm(now, now - self._loud_s >= QUIET_S)
            if step is not None:
                self._apply(step)

    def _apply(self, step: LatencyStep) -> None:
        assert self.policy is not None
        with self._lifecycle:
            if self._stopping.is_set():
                return
            stream = None
            try:
                token, stream = self._new_stream(step.to_s)
                stream.start()
            except self.sd.PortAudioError:
                if stream is not None:
                    stream.close()
                self.policy.rejected(step)
                self.step_errors += 1
                return
            # A stream just started may pause after its first callbacks (a
            # PulseAudio stream fills, then waits for the server): take
            # charge once it runs at its pace, so that pauses stay silent.
            deadline = time.monotonic() + STANDBY_MAX_S
            while self._standby_calls < STANDBY_CALLS and time.monotonic() < deadline:
                time.sleep(0.01)
            with self._switch:
                old = self._stream
                self._token, self._stream = token, stream
                self.latency_s = step.to_s
                self._switched(stream)
            self.steps.append(step)
            # The old stream plays out what it holds (it writes silence after).
            old.stop()
            old.close()
        if self.on_step is not None:
            self.on_step(step)
