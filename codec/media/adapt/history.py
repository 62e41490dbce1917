"""The sender of a hop: what it sent, to read feedback against.

A :class:`SendHistory` remembers, by transport sequence number, when each
datagram left and how big it was; :meth:`SendHistory.on_feedback` turns a
:class:`~codec.media.feedback.FeedbackPacket` into :class:`PacketResult` s
(send time, arrival time or None, size) for the estimators. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..feedback import FEEDBACK_TICK_US, FeedbackPacket
from ..seqnum import Unwrapper, seq_delta

__all__ = ["PacketResult", "SendHistory"]

_MAX_AGE_S = 2.0
"""How long a sent packet waits for feedback (seconds) before it is forgotten."""
_FORGET_SLACK_S = 0.1
"""Packets are forgotten in batches, up to this much later than
:data:`_MAX_AGE_S` (seconds)."""
_TICK_S = FEEDBACK_TICK_US / 1e6


@dataclass(frozen=True, slots=True)
class PacketResult:
    """One sent packet and what feedback said of it."""

    seq: int
    """Transport sequence number, unwrapped."""
    size: int
    """Datagram bytes."""
    sent_at: float
    """Sender clock, seconds."""
    arrived_at: float | None
    """Receiver clock, seconds (only differences mean anything), None if lost."""
    probe_cluster: int | None = None
    """The probe cluster the packet belonged to, if it was a probe."""


class SendHistory:
    """Packets sent on one hop, waiting for feedback.

    Call :meth:`on_sent` as each datagram leaves (with its transport sequence
    number) and :meth:`on_feedback` with each feedback packet; packets are
    reported once, in sequence order, and forgotten 2 s after they left (at
    most a tenth of a second later: in batches).
    """

    def __init__(self) -> None:
        self.feedback_received = 0
        self.feedback_lost = 0
        """Feedback packets missing by their 8-bit sequence number."""
        self._sent: dict[int, tuple[int, float, int | None]] = {}
        """Unwrapped sequence number → (size, sent at, probe cluster), in
        sending order."""
        self._last_seq: int | None = None
        self._forget_at = math.inf
        """When to look for packets to forget: a little after the oldest held
        falls due (it may have been reported since), so that they go in
        batches, not one at each :meth:`on_sent`."""
        self._feedback_seq: int | None = None
        self._reference = Unwrapper(32)
        self.bytes_in_flight = 0
        """Bytes sent and not yet reported by feedback (seconds up to 2 s)."""

    def on_sent(
        self, seq: int, size: int, now: float, probe_cluster: int | None = None
    ) -> None:
        """Record that the datagram numbered ``seq`` (16 bits) of ``size`` bytes
        left at ``now``."""
        # Called for each datagram a hop forwards: the unwrapping is inline.
        last = self._last_seq
        if last is None:
            full = seq & 0xFFFF
        else:
            full = last + ((seq - last + 0x8000) & 0xFFFF) - 0x8000
        self._last_seq = full
        sent = self._sent
        sent[full] = (size, now, probe_cluster)
        self.bytes_in_flight += size
        forget_at = self._forget_at
        if now > forget_at:
            self._forget(now)
        elif forget_at == math.inf:
            self._forget_at = now + _MAX_AGE_S + _FORGET_SLACK_S

    def _forget(self, now: float) -> None:
        """Forget the packets sent more than :data:`_MAX_AGE_S` before ``now``."""
        sent = self._sent
        oldest_allowed = now - _MAX_AGE_S
        forgotten = []
        for seq, (size, sent_at, _) in sent.items():
            if sent_at >= oldest_allowed:
                self._forget_at = sent_at + _MAX_AGE_S + _FORGET_SLACK_S
                break
            forgotten.append(seq)
            self.bytes_in_flight -= size
        else:
            self._forget_at = math.inf
        for seq in forgotten:
            del sent[seq]

    def on_feedback(self, feedback: FeedbackPacket) -> list[PacketResult]:
        """What ``feedback`` says of the packets this history holds, in sequence
        order (packets it does not hold, or already reported, are skipped)."""
        self.feedback_received += 1
        if self._feedback_seq is not None:
            gap = seq_delta(feedback.feedback_seq, self._feedback_seq, 8) - 1
            self.feedback_lost += max(0, gap)
        self._feedback_seq = feedback.feedback_seq
        if self._last_seq is None:
            return []
        base = self._last_seq + seq_delta(feedback.base_seq, self._last_seq & 0xFFFF)
        reference_s = self._reference.unwrap(feedback.reference_time) * _TICK_S
        results = []
        for index, arrival in enumerate(feedback.arrivals):
            sent = self._sent.pop(base + index, None)
            if sent is None:
                continue
            size, sent_at, probe_cluster = sent
            self.bytes_in_flight -= size
            results.append(
                PacketResult(
                    seq=base + index,
                    size=size,
                    sent_at=sent_at,
                    arrived_at=None
                    if arrival is None
                    else reference_s + arrival * _TICK_S,
                    probe_cluster=probe_cluster,
                )
            )
        return results
