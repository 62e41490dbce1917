"""Wall-clock time for stored timestamps (the event loop's clock is for timers)."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Unix time in milliseconds."""
    return int(time.time() * 1000)
