"""The settings' sound check, on the loop thread: the devices the pickers
list, a live level meter on the chosen input, and a test tone on the chosen
output.

Devices open in an executor (PortAudio may take a moment); their callbacks
run on PortAudio's threads and only hand a level to the loop with
``call_soon_threadsafe``. numpy and PortAudio load with the first use, not
with the engine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..audio_model import AudioDeviceEntry, AudioDeviceList, InputLevel
from ..model import UiEvent

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LEVEL_INTERVAL_S", "TONE_HZ", "TONE_S", "SoundCheck"]

log = logging.getLogger("quicmeet.engine.sound")

LEVEL_INTERVAL_S = 0.1
"""How often the meter's level goes up to the window."""
TONE_HZ = 440.0
TONE_S = 1.5
"""How long the test tone plays."""
_TONE_AMPLITUDE = 0.25 * 32767


class SoundCheck:
    """Devices, the input meter and the test tone; ``post`` sends UI events."""

    def __init__(self, post: Callable[[UiEvent], None]) -> None:
        self._post = post
        self._meter: Any = None
        self._meter_device = ""
        self._tone: Any = None
        self._tone_timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()

    async def devices(self) -> AudioDeviceList:
        """The devices PortAudio sees, or why there are none."""
        return await asyncio.get_running_loop().run_in_executor(None, list_devices)

    async def watch_input(self, device: str | None) -> None:
        """Post the level of ``device`` (a name, ``""`` for the default input)
        every :data:`LEVEL_INTERVAL_S` until called with ``None``. A device
        that cannot be opened is posted once as an :class:`InputLevel` with
        its problem."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._stop_meter)
        if device is None:
            return
        try:
            meter = await loop.run_in_executor(None, self._open_meter, device, loop)
        except Exception as exc:  # AudioUnavailable and PortAudio's own errors
            self._post(InputLevel(device, -127.0, str(exc)))
            return
        with self._lock:
            self._meter, self._meter_device = meter, device

    def _open_meter(self, device: str, loop: asyncio.AbstractEventLoop) -> Any:
        from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

        from ...media.audio_devices import Microphone

        frames_per_post = max(1, round(LEVEL_INTERVAL_S * SAMPLE_RATE / FRAME_SAMPLES))
        loudest = [-127.0]
        count = [0]

        def on_frame(frame: np.ndarray, _capture_s: float) -> None:
            loudest[0] = max(loudest[0], dbov(frame))
            count[0] += 1
            if count[0] >= frames_per_post:
                level, loudest[0], count[0] = loudest[0], -127.0, 0
                loop.call_soon_threadsafe(self._post, InputLevel(device, level))

        meter = Microphone(device or None, on_frame)
        meter.start()
        return meter

    def _stop_meter(self) -> None:
        with self._lock:
            meter, self._meter = self._meter, None
        if meter is not None:
            meter.stop()

    async def play_tone(self, device: str) -> None:
        """Play a :data:`TONE_HZ` tone for :data:`TONE_S` on output ``device``
        (``""``: the default one). Raises ``AudioUnavailable`` with a message
        for people when the device cannot be opened."""
        loop = asyncio.get_running_loop()
        await self._stop_tone()
        self._tone = await loop.run_in_executor(None, _start_tone, device)
        self._tone_timer = loop.call_later(
            TONE_S, lambda: loop.create_task(self._stop_tone())
        )

    async def _stop_tone(self) -> None:
        if self._tone_timer is not None:
            self._tone_timer.cancel()
            self._tone_timer = None
        tone, self._tone = self._tone, None
        if tone is not None:
            await asyncio.get_running_loop().run_in_executor(None, tone.stop)

    async def close(self) -> None:
        """Stop the meter and the tone."""
        await asyncio.get_running_loop().run_in_executor(None, self._stop_meter)
        await self._stop_tone()


def dbov(frame: np.ndarray) -> float:
    """The RMS level of an int16 frame in dBov (-127 for digital silence)."""
    import numpy as np

    rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) / 32768.0
    return max(-127.0, 20.0 * float(np.log10(rms))) if rms > 0 else -127.0


def list_devices() -> AudioDeviceList:
    """Every PortAudio device (blocking: call in an executor)."""
    from ...media.audio_devices import list_audio_devices
    from ...media.errors import AudioUnavailable

    try:
        devices = list_audio_devices()
    except AudioUnavailable as exc:
        return AudioDeviceList((), str(exc))
    entries = tuple(
        AudioDeviceEntry(
            d.index, d.name, d.inputs, d.outputs, d.default_input, d.default_output
        )
        for d in devices
    )
    problem = "" if entries else "audio is off: no sound device found"
    return AudioDeviceList(entries, problem)


def _start_tone(device: str) -> Any:
    import numpy as np

    from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

    from ...media.audio_devices import Speaker

    played = [0]

    def pull(_now: float) -> np.ndarray:
        index = np.arange(played[0], played[0] + FRAME_SAMPLES)
        played[0] += FRAME_SAMPLES
        wave = np.sin(2 * np.pi * TONE_HZ * index / SAMPLE_RATE) * _TONE_AMPLITUDE
        return wave.astype(np.int16)

    speaker = Speaker(device or None, pull)
    speaker.start()
    log.info("test tone on %s at %d Hz", device or "the default output", speaker.rate)
    return speaker
