"""Pacing that an event loop's timers can keep; for the server and the client.

aioquic's pacer (``QuicPacketPacer``) lets a packet leave while its bucket
holds credit (time), refills the bucket with the time that passed, caps it at
``bucket_max`` (at most 16 packets' worth) and, when it is empty, asks to be
woken one packet's time later (``packet_time``: 35 µs at 270 Mbit/s). Two
facts of the event loops it runs on break that at high rates:

- neither loop keeps a timer shorter than a millisecond: uvloop's clock
  (``loop.time()``) and timers move in whole milliseconds, a delay under
  0.5 ms is run at the next turn of the loop (early, its clock not moved),
  and asyncio's own loop sleeps in ``epoll`` for a whole millisecond at
  least;
- so on uvloop the connection wakes at once, finds the bucket as empty as
  before (the clock has not moved), asks for the same wakeup again and spins
  until the clock ticks; then it gets one tick of credit, capped at
  ``bucket_max``: 16 packets a millisecond, whatever the congestion window
  allows (22.7 MB/s with 1,417-byte packets). The quicmeet server runs on
  uvloop: a download was held at exactly that rate with the server's loop
  busy throughout, three pacing wakeups per packet sent, nearly all of them
  sending nothing. (On asyncio's loop a sender woken by its timer alone
  gets a millisecond's credit per wakeup, and so the same 16 packets, unless
  the loop's own work between wakeups outlasts a packet's time.)

:class:`GranularPacer` paces as aioquic's does with two changes, both only
where a packet's time is shorter than the loops' timer granularity
(:data:`TIMER_GRANULARITY`, 1 ms: at 1,200 bytes per packet, above 9.6 Mbit/s;
below that it decides exactly as aioquic's, which every test of media on a
slow or lossy path runs):

- an empty bucket asks to be woken no sooner than one granularity later, a
  wakeup the loop can keep; the packets of that millisecond then leave
  together in one burst, as they did at a tick before;
- the bucket holds at least two granularities of credit (one tick, and one
  more for a tick that comes late), so a tick's credit is not cut to 16
  packets: the rate is the controller's (``congestion_window / smoothed_rtt``,
  aioquic's pacing rate), not the clock's.

A burst is at most two milliseconds of the pacing rate (aioquic allows a
quarter of the window or 16 packets); the congestion window still bounds
what is in flight. The class is given to the connection's pacer object
(:func:`install`), so its state carries over and nothing else changes.
"""

from __future__ import annotations

from aioquic.quic.congestion.base import K_GRANULARITY
from aioquic.quic.connection import QuicConnection
from aioquic.quic.recovery import QuicPacketPacer, QuicPacketRecovery

__all__ = ["PRIVATE_ATTRIBUTES", "TIMER_GRANULARITY", "GranularPacer", "install"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: ("_loss",),
    QuicPacketRecovery: ("_pacer",),
}
"""Which private attribute of which aioquic class this module reads (the
pacer's own attributes are public)."""

TIMER_GRANULARITY = K_GRANULARITY
"""Seconds: the shortest wakeup an event loop keeps (uvloop's clock step,
asyncio's shortest ``epoll`` wait); RFC 9002's kGranularity, aioquic's too."""


class GranularPacer(QuicPacketPacer):
    """aioquic's pacer, waking no sooner than the loops can and holding a
    tick's credit (see the module's text)."""

    def next_send_time(self, now: float) -> float | None:
        packet_time = self.packet_time
        if packet_time is not None:
            self.update_bucket(now=now)
            if self.bucket_time <= 0:
                if packet_time < TIMER_GRANULARITY:
                    return now + TIMER_GRANULARITY
                return now + packet_time
        return None

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        super().update_rate(congestion_window, smoothed_rtt)
        if self.bucket_max < 2 * TIMER_GRANULARITY:
            self.bucket_max = 2 * TIMER_GRANULARITY


def install(quic: QuicConnection) -> GranularPacer | None:
    """Give ``quic``'s pacer the class :class:`GranularPacer`; idempotent.
    Returns the pacer, or None (left alone) for an aioquic whose connection
    has no such pacer."""
    pacer = getattr(getattr(quic, "_loss", None), "_pacer", None)
    if type(pacer) is QuicPacketPacer:
        pacer.__class__ = GranularPacer
    return pacer if isinstance(pacer, GranularPacer) else None
