"""The receive buffer for video that waits for retransmissions, by time.

:class:`FrameBuffer` is a :class:`~codec.media.fragment.Reassembler` whose wait
is a deadline derived from the hop's round trip: a frame at the delivery point
is held while it can still be completed by a retransmission (two round trips
plus a margin, between ``min_wait_s`` and ``max_wait_s``, counted from the last
progress on it), and never longer than ``max_hold_s`` in all, so a trickle of
retransmissions cannot hold the picture back. Then it is skipped
(:class:`~codec.media.fragment.FramesLost`) and the frames behind it flow. The
same wait tells the :class:`~codec.media.recovery.NackGenerator` when to give a
packet up and the sender when a retransmission would come too late
(:func:`frame_wait_s`). Pure: the caller passes ``now``.
"""

from __future__ import annotations

from ..fragment import Reassembler

__all__ = ["FrameBuffer", "frame_wait_s"]

MIN_WAIT_S = 0.25
"""Shortest wait: enough for the hop before this one (publisher → SFU, up to
about 100 ms of round trip) to repair a loss too when this hop is fast, with
its retry (two of its round trips), even a frame's last packet, whose loss
shows only when the next frame starts."""
MAX_WAIT_S = 0.3
"""Longest wait, however long the round trip: beyond it a skip costs less."""
WAIT_MARGIN_S = 0.05
"""Added to the round trips: the gap is seen one packet late, and the sender's
queue and jitter delay the retransmission."""
REPAIR_ROUND_TRIPS = 2
"""Round trips a frame is waited for: the NACK and its retransmission, and
when either was lost, the one retry a round trip later and its
retransmission. With one round trip the retry could never come back in time,
so a NACK or a retransmission lost cost the frame, and a keyframe."""


def frame_wait_s(
    rtt_s: float,
    *,
    margin_s: float = WAIT_MARGIN_S,
    min_wait_s: float = MIN_WAIT_S,
    max_wait_s: float = MAX_WAIT_S,
) -> float:
    """How long, in seconds, a frame is waited for on a hop of round trip
    ``rtt_s``: ``REPAIR_ROUND_TRIPS x rtt_s + margin_s`` clamped to
    ``[min_wait_s, max_wait_s]``."""
    return min(max_wait_s, max(min_wait_s, REPAIR_ROUND_TRIPS * rtt_s + margin_s))


class FrameBuffer(Reassembler):
    """Rebuilds one video track's frames, waiting for retransmissions.

    Used as a :class:`~codec.media.fragment.Reassembler` (``push``, ``expire``,
    ``next_deadline``); :meth:`set_rtt` sets the wait from the measured round
    trip. ``max_hold_s`` caps the time a frame blocks the ones behind it,
    counted from the first arrival of it (or of a later frame, if none of it
    came).
    """

    def __init__(
        self,
        rtt_s: float = 0.1,
        *,
        max_hold_s: float = 0.5,
        max_frames: int = 32,
    ) -> None:
        super().__init__(timeout_s=frame_wait_s(rtt_s), max_frames=max_frames)
        self.max_hold_s = max_hold_s

    @property
    def wait_s(self) -> float:
        """The current wait, in seconds (see :func:`frame_wait_s`)."""
        return self.timeout_s

    def set_rtt(self, rtt_s: float) -> None:
        """Take a new round-trip measurement (seconds) for the wait."""
        self.timeout_s = frame_wait_s(rtt_s)

    def _head_deadline(self) -> float:
        assert self._next is not None
        head = self._pending.get(self._next)
        if head is not None:
            blocked_since = head.first_arrival
        else:
            blocked_since = min(p.first_arrival for p in self._pending.values())
        return min(
            self._stall_since() + self.timeout_s, blocked_since + self.max_hold_s
        )
