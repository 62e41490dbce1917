"""How much of what a hop sends is repairs: the room the encoders leave them.

Retransmissions count against the hop's rate like any packet ([loss]: each
is sent twice). An encoder given the whole estimate leaves the repairs no
room, so on a lossy path they queue behind the video, arrive late and freeze
the picture, and the path runs over its capacity by what they take. The
hop's senders are therefore given the estimate less the share of the bytes
that were repairs over the last :data:`WINDOW_S` (libwebrtc likewise takes
its protection overhead off the encoder's target). The estimate itself is not
cut: random loss that retransmission covers never lowers it.

Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

from collections import deque

__all__ = ["MAX_REPAIR_SHARE", "WINDOW_S", "RepairShare"]

WINDOW_S = 2.0
"""The share is measured over this long (seconds)."""
MAX_REPAIR_SHARE = 0.5
"""The most of the estimate left to repairs: past this, the path loses more
than retransmission can cover, and the estimate's loss bound decides."""


class RepairShare:
    """The fraction of a hop's released media bytes that were repairs."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._released: deque[tuple[float, int, bool]] = deque()
        self._bytes = 0
        self._repair_bytes = 0

    def on_released(self, size: int, repair: bool, now: float) -> None:
        """``size`` bytes of media left at ``now``; ``repair``: a retransmission."""
        self._released.append((now, size, repair))
        self._bytes += size
        if repair:
            self._repair_bytes += size
        self._evict(now)

    def share(self, now: float) -> float:
        """Repairs' share of the bytes released over the window, at most
        :data:`MAX_REPAIR_SHARE`."""
        self._evict(now)
        if not self._bytes:
            return 0.0
        return min(self._repair_bytes / self._bytes, MAX_REPAIR_SHARE)

    def _evict(self, now: float) -> None:
        released = self._released
        oldest = now - self.window_s
        while released and released[0][0] < oldest:
            _, size, repair = released.popleft()
            self._bytes -= size
            if repair:
                self._repair_bytes -= size
