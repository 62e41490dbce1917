"""Audio levels as RFC 6464 carries them, and the active speaker they show.

:func:`audio_level` is the level byte's value for one frame: its RMS in -dBov
(0 is a full-scale square wave, 127 is digital silence). :class:`ActiveSpeaker`
turns the levels arriving from every speaker into "who speaks now", with a
hold time so the choice does not flap between two people talking over each
other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ActiveSpeaker", "ActiveSpeakerChanged", "SILENT_LEVEL", "audio_level"]

SILENT_LEVEL = 127
"""-127 dBov and below: the RFC's value for silence."""


def audio_level(frame: np.ndarray) -> int:
    """RFC 6464 level of ``frame`` (int16 samples): RMS in -dBov, 0..127."""
    if frame.size == 0:
        return SILENT_LEVEL
    samples = frame.astype(np.float64) / 32768.0
    rms = math.sqrt(float(np.mean(samples * samples)))
    if rms <= 0.0:
        return SILENT_LEVEL
    return max(0, min(SILENT_LEVEL, round(-20.0 * math.log10(rms))))


@dataclass(frozen=True, slots=True)
class ActiveSpeakerChanged:
    """The active speaker is now ``speaker`` (``None``: nobody speaks)."""

    speaker: str | None


@dataclass(slots=True)
class _Loudness:
    energy: float = 0.0
    last_s: float = 0.0


class ActiveSpeaker:
    """Picks the loudest voice over the last second or so.

    Feed :meth:`update` every packet's level (and V bit) as it arrives; it
    returns an :class:`ActiveSpeakerChanged` when the choice changes.
    A new speaker must be louder than the current one for ``hold_s`` seconds
    before the choice moves; silence longer than ``idle_s`` clears it.
    """

    def __init__(
        self,
        *,
        time_constant_s: float = 0.5,
        hold_s: float = 0.8,
        idle_s: float = 2.0,
        speech_below_level: int = 60,
    ) -> None:
        self.time_constant_s = time_constant_s
        self.hold_s = hold_s
        self.idle_s = idle_s
        self.speech_below_level = speech_below_level
        self.current: str | None = None
        self._speakers: dict[str, _Loudness] = {}
        self._challenger_since: float | None = None

    def update(
        self, speaker: str, level: int, voice: bool, now: float
    ) -> ActiveSpeakerChanged | None:
        """Take one frame's level; an event when the active speaker changes."""
        loud = self._speakers.setdefault(speaker, _Loudness(last_s=now))
        decay = math.exp(-max(0.0, now - loud.last_s) / self.time_constant_s)
        speaking = voice and level < self.speech_below_level
        # Linear power of the level, so one loud talker outweighs murmurs.
        power = 10.0 ** (-level / 10.0) if speaking else 0.0
        loud.energy = loud.energy * decay + power * (1.0 - decay)
        if speaking:
            loud.last_s = now
        return self._decide(now)

    def forget(self, speaker: str, now: float) -> ActiveSpeakerChanged | None:
        """``speaker`` left; an event if that changes the active speaker."""
        self._speakers.pop(speaker, None)
        return self._decide(now)

    def tick(self, now: float) -> ActiveSpeakerChanged | None:
        """Re-decide without a new level (speakers fall idle as time passes)."""
        return self._decide(now)

    def _decide(self, now: float) -> ActiveSpeakerChanged | None:
        live = {
            name: loud.energy
            for name, loud in self._speakers.items()
            if now - loud.last_s <= self.idle_s and loud.energy > 0.0
        }
        if not live:
            self._challenger_since = None
            if self.current is not None:
                self.current = None
                return ActiveSpeakerChanged(None)
            return None
        loudest = max(live, key=live.__getitem__)
        if self.current is None or self.current not in live:
            self.current = loudest
            self._challenger_since = None
            return ActiveSpeakerChanged(loudest)
        if loudest == self.current:
            self._challenger_since = None
            return None
        if self._challenger_since is None:
            self._challenger_since = now
        if now - self._challenger_since >= self.hold_s:
            self.current = loudest
            self._challenger_since = None
            return ActiveSpeakerChanged(loudest)
        return None
