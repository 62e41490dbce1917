"""How many bytes ACKs deliver in a clump beyond what the bandwidth explains.

Wi-Fi aggregates frames, receivers delay ACKs, and a busy host answers a burst of
packets after a pause: the ACKs of a path come in clumps. A window of exactly
``bandwidth x RTT`` then runs empty while the sender waits for the next clump,
and the flow delivers less than the path carries. BBR measures the excess (its
``extra_acked``): in an epoch that starts whenever deliveries fall back to the
bandwidth, the bytes acknowledged beyond ``bandwidth x elapsed``; the window adds
the highest excess of the last rounds.
"""

from __future__ import annotations

from .windowed import windowed_max

__all__ = ["AckAggregation"]


class AckAggregation:
    """The recent highest ACK-clump excess, in bytes.

    ``window_rounds`` is how many round trips the highest excess is kept for.
    """

    def __init__(self, window_rounds: int) -> None:
        self._extra = windowed_max(window_rounds, window_rounds)
        self._epoch_start = 0.0
        self._epoch_acked = 0

    @property
    def extra_bytes(self) -> int:
        """The highest excess of the window, in bytes (0 before any)."""
        value = self._extra.value
        return 0 if value is None else int(value)

    def on_acked(
        self,
        acked_bytes: int,
        now: float,
        bandwidth: float | None,
        round_count: int,
        cap_bytes: int,
    ) -> None:
        """Account for ``acked_bytes`` acknowledged at ``now`` (seconds) while the
        model's bandwidth is ``bandwidth`` (bytes per second); an excess counts at
        most ``cap_bytes`` (the window)."""
        if not bandwidth:
            return
        expected = bandwidth * (now - self._epoch_start)
        if self._epoch_acked <= expected:
            # Deliveries have caught up with the bandwidth: a new epoch.
            self._epoch_start = now
            self._epoch_acked = 0
            expected = 0.0
        self._epoch_acked += acked_bytes
        excess = self._epoch_acked - expected
        self._extra.update(cap_bytes if cap_bytes < excess else excess, round_count)
