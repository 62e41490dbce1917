"""Packet pacing for a sender that runs on an event loop: bursts that cover
one turn of the loop.

aioquic paces at ``congestion_window / smoothed_rtt`` with a token bucket
that holds at most 16 packets (and at most a quarter of the window): after a
pause the sender may catch up by 16 packets, then waits for its pacing timer.
An asyncio (or uvloop) timer fires at the earliest a millisecond later, and
on a busy Python host a turn of the loop takes a few: on loopback and LAN
paths each wakeup then sent 16 packets and no more, whatever the window
allowed (``bench/files.py --trace``: every transmit ended on the pacer, 15-16
packets each, and the transfer ran at 16 packets per loop turn, about 10
MB/s, with a 1.4 MB window mostly empty).

:class:`TurnPacer` lets the bucket also hold :data:`LOOP_TURN_S` of sending at
the pacing rate, still at most a quarter of the window (so a quarter of the
round trip: a path whose round trip is under 16 ms gets proportionally less).
Below about 6 MB/s (16 packets of 1,452 bytes in 4 ms) that is no more than
aioquic's own 16 packets, so slow paths pace exactly as before.
"""

from __future__ import annotations

from aioquic.quic.recovery import QuicPacketPacer

__all__ = ["LOOP_TURN_S", "TurnPacer", "burst_seconds"]

LOOP_TURN_S = 0.004
"""Seconds of sending at the pacing rate the bucket may hold: a few of the
loop's 1 ms timer ticks, the length of a busy turn of a Python loop (reading
a burst of 64 datagrams costs aioquic a few milliseconds)."""

_MIN_RTT_S = 1e-6  # aioquic's floor on the round trip it divides by


def burst_seconds(
    congestion_window: int, smoothed_rtt: float, aioquic_bucket_s: float
) -> float:
    """How much sending time (seconds) the bucket may hold: aioquic's
    ``aioquic_bucket_s``, or :data:`LOOP_TURN_S` if that is more, capped at a
    quarter of the window's time (``smoothed_rtt / 4``)."""
    turn = min(LOOP_TURN_S, max(smoothed_rtt, _MIN_RTT_S) / 4)
    return max(aioquic_bucket_s, turn) if congestion_window > 0 else aioquic_bucket_s


class TurnPacer(QuicPacketPacer):
    """aioquic's pacer with a bucket of :func:`burst_seconds`."""

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        super().update_rate(
            congestion_window=congestion_window, smoothed_rtt=smoothed_rtt
        )
        self.bucket_max = burst_seconds(
            congestion_window, smoothed_rtt, self.bucket_max
        )
