"""How much a sound device buffers, adapted as a jitter buffer adapts.

A device buffer is the slack a callback has: the more sound the device holds
ahead of (or behind) the callback, the later a callback may come before the
device runs dry (an underrun) or overflows, and the longer everything played
(or captured) waits. A fixed buffer is either too long on a quiet machine or
too short on a busy one, so :class:`DeviceLatency` starts on the lowest rung
of a ladder of buffer lengths, climbs one rung at each glitch (an underrun or
overrun the device side saw), and climbs down one rung after a long calm
period. It never sees a device: the caller opens the device again with each
:class:`LatencyStep` it returns (at once for a step up: the glitch was heard
already; a step down only when the caller says the sound is quiet, where the
few milliseconds the switch cuts or repeats go unheard).

Hysteresis: a step down that is followed by a glitch before it has been
calm for a whole calm period proved the lower rung too short, so the calm
period needed to step down again doubles (up to a cap). Glitches within
``settle_s`` of a step belong to the switch and do not climb again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MICROPHONE_LADDER_S",
    "SPEAKER_LADDER_S",
    "DeviceLatency",
    "LatencyStep",
]

SPEAKER_LADDER_S = (0.04, 0.06, 0.12, 0.2, 0.4)
"""A speaker's device buffers, seconds, as PortAudio on PulseAudio gives
them (asked for 20 ms it gives 40, for 50 it gives 60, for 100 it gives
120). Up to 60 ms it pulls every 20 ms; from 80 ms on, two frames every
40 ms (``docs/audio.md``, *Device buffers*)."""
MICROPHONE_LADDER_S = (0.04, 0.06, 0.12)
"""A microphone's: up to 60 ms PortAudio hands over each 20 ms frame on its
own; from 80 ms on, in pairs every 40 ms."""


@dataclass(frozen=True, slots=True)
class LatencyStep:
    """One change of the device buffer: at ``at_s`` (the caller's clock),
    from ``from_s`` to ``to_s`` seconds, because of ``reason`` (``"glitch"``
    climbs, ``"calm"`` climbs down)."""

    at_s: float
    from_s: float
    to_s: float
    reason: str


class DeviceLatency:
    """The device buffer one device should run with, on the caller's clock.

    Call :meth:`glitch` for each underrun or overrun and :meth:`calm` a few
    times a second; each returns the :class:`LatencyStep` to apply, or None.
    When applying one fails (the device would not open), :meth:`rejected`
    puts the policy back where it was.
    """

    def __init__(
        self,
        ladder_s: Sequence[float] = SPEAKER_LADDER_S,
        *,
        calm_s: float = 60.0,
        max_calm_s: float = 960.0,
        settle_s: float = 1.0,
    ) -> None:
        if not ladder_s or list(ladder_s) != sorted(set(ladder_s)):
            raise ValueError("the ladder must be non-empty and strictly rising")
        if ladder_s[0] <= 0:
            raise ValueError("device buffers must be longer than zero")
        if not 0 < calm_s <= max_calm_s:
            raise ValueError("need 0 < calm_s <= max_calm_s")
        if settle_s < 0:
            raise ValueError("settle_s must not be negative")
        self.ladder_s = tuple(ladder_s)
        self.base_calm_s = calm_s
        self.max_calm_s = max_calm_s
        self.settle_s = settle_s
        self.calm_needed_s = calm_s
        """How long it must stay calm now before a step down, seconds."""
        self.glitches = 0
        """Every glitch reported, also those that did not climb."""
        self._rung = 0
        self._since_s: float | None = None
        """When the current rung started being calm (None: not yet known)."""
        self._stepped_at_s: float | None = None
        self._last_down: LatencyStep | None = None

    @property
    def current_s(self) -> float:
        """The device buffer to run with now, seconds."""
        return self.ladder_s[self._rung]

    def glitch(self, now: float) -> LatencyStep | None:
        """The device underran or overran at ``now``: the step up to apply
        at once, or None (at the top, or the last step is still settling)."""
        self.glitches += 1
        self._since_s = now
        if self._stepped_at_s is not None and now - self._stepped_at_s < self.settle_s:
            return None
        down = self._last_down
        if down is not None and now - down.at_s < self.calm_needed_s:
            self.calm_needed_s = min(self.calm_needed_s * 2.0, self.max_calm_s)
        self._last_down = None
        if self._rung + 1 >= len(self.ladder_s):
            return None
        return self._step(now, self._rung + 1, "glitch")

    def calm(self, now: float, quiet: bool) -> LatencyStep | None:
        """The step down to apply now (``quiet``: nothing audible is playing
        or being captured), or None."""
        if self._since_s is None:
            self._since_s = now
        if self._rung == 0 or not quiet:
            return None
        if now - self._since_s < self.calm_needed_s:
            return None
        step = self._step(now, self._rung - 1, "calm")
        self._last_down = step
        self._since_s = now
        return step

    def rejected(self, step: LatencyStep) -> None:
        """``step`` could not be applied: run on as before it."""
        self._rung = self.ladder_s.index(step.from_s)
        if self._last_down is step:
            self._last_down = None

    def _step(self, now: float, rung: int, reason: str) -> LatencyStep:
        step = LatencyStep(now, self.ladder_s[self._rung], self.ladder_s[rung], reason)
        self._rung = rung
        self._stepped_at_s = now
        return step
