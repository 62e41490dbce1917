"""The server's clock, injected into every service.

Services read time only from a :class:`Clock`: monotonic seconds for rates,
throttles and expiries, Unix milliseconds for what is stored and shown. A test
gives the server a :class:`ShiftedClock` and moves it past a timer instead of
sleeping through it.
"""

from __future__ import annotations

import time

__all__ = ["Clock", "ShiftedClock"]


class Clock:
    """Real time."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin; never goes back."""
        return time.monotonic()

    def wall_ms(self) -> int:
        """Unix time in milliseconds."""
        return int(time.time() * 1000)


class ShiftedClock(Clock):
    """Real time plus an offset that :meth:`advance` moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0
        """Seconds added to real time."""

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` ahead, as if that much time had passed."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.offset += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall_ms(self) -> int:
        return int((time.time() + self.offset) * 1000)
