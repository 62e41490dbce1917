"""The receiver of a hop: which transport sequence numbers arrived, and when.

An :class:`ArrivalRecorder` is fed every audio, video and probe datagram's
transport sequence number with its arrival time and, every
:data:`FEEDBACK_INTERVAL_S` or so, turns what arrived since the last report
into :class:`~codec.media.feedback.FeedbackPacket` datagrams for the hop's
sender. Pure: the caller passes ``now`` (seconds on its own clock).
"""

from __future__ import annotations

from ..feedback import FEEDBACK_TICK_US, MAX_FEEDBACK_STATUSES, FeedbackPacket
from ..seqnum import Unwrapper

__all__ = ["FEEDBACK_INTERVAL_S", "ArrivalRecorder"]

FEEDBACK_INTERVAL_S = 0.05
"""How often a hop's receiver reports (seconds): often enough for the sender's
delay detector to react within a few of them, rarely enough that feedback
costs under 1% of a 500 kbit/s stream."""

_MAX_TRACKED = 2000
"""Packets held unreported at most; past that the oldest are forgotten (a
receiver that cannot send feedback for seconds has nothing useful to say)."""
_MAX_DELTA_TICKS = 0x7FFF


class ArrivalRecorder:
    """Arrival times by transport sequence number, reported in order.

    Call :meth:`on_packet` for every datagram that carries a transport
    sequence number and :meth:`feedback` when :meth:`due` says; send each
    packet it returns. Each report starts where the previous one ended, so a
    packet that arrives after its number was reported as missing counts as
    lost for the sender (as in transport-wide-cc).
    """

    def __init__(self, interval_s: float = FEEDBACK_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.packets_recorded = 0
        self.feedback_sent = 0
        self._unwrap = Unwrapper(16)
        self._arrivals: dict[int, float] = {}
        self._next_base: int | None = None
        self._highest: int | None = None
        self._feedback_seq = 0
        self._last_report = float("-inf")

    def on_packet(self, transport_seq: int, now: float) -> None:
        """Record that ``transport_seq`` (16 bits) arrived at ``now``."""
        seq = self._unwrap.unwrap(transport_seq)
        if self._next_base is None:
            self._next_base = seq
        if seq < self._next_base or seq in self._arrivals:
            return
        self.packets_recorded += 1
        self._arrivals[seq] = now
        if self._highest is None or seq > self._highest:
            self._highest = seq
        if self._highest - self._next_base >= _MAX_TRACKED:
            self._forget_before(self._highest - _MAX_TRACKED + 1)

    def due(self, now: float) -> bool:
        """Whether a report is due: something arrived and ``interval_s`` passed."""
        return bool(self._arrivals) and now - self._last_report >= self.interval_s

    def next_report_at(self) -> float | None:
        """When the next report is due (seconds), None while nothing arrived."""
        if not self._arrivals:
            return None
        return self._last_report + self.interval_s

    def feedback(self, now: float) -> list[FeedbackPacket]:
        """Everything from the last report to the highest number seen, as one
        or more feedback packets (split at 500 statuses, or where two
        arrivals are more than 8 s apart)."""
        self._last_report = now
        if self._highest is None or self._next_base is None or not self._arrivals:
            return []
        packets: list[FeedbackPacket] = []
        base = self._next_base
        while base <= self._highest:
            end = min(self._highest + 1, base + MAX_FEEDBACK_STATUSES)
            times: list[float | None] = []
            previous: float | None = None
            for seq in range(base, end):
                arrival = self._arrivals.get(seq)
                if arrival is not None and previous is not None:
                    if abs(arrival - previous) * 1e6 / FEEDBACK_TICK_US > (
                        _MAX_DELTA_TICKS
                    ):
                        break
                times.append(arrival)
                if arrival is not None:
                    previous = arrival
            packets.append(
                FeedbackPacket.from_arrival_times(
                    self._feedback_seq, base & 0xFFFF, times
                )
            )
            self._feedback_seq = (self._feedback_seq + 1) & 0xFF
            base += len(times)
        self._forget_before(base)
        self.feedback_sent += len(packets)
        return packets

    def _forget_before(self, seq: int) -> None:
        for old in [s for s in self._arrivals if s < seq]:
            del self._arrivals[old]
        self._next_base = seq
