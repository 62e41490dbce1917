"""Transport-wide congestion feedback: which packets of a hop arrived, and when.

In the spirit of RFC 8888 and transport-wide-cc: the receiver of a hop reports,
for a run of consecutive transport sequence numbers, a 2-bit status per packet
(lost, received with a 1-byte delta, received with a 2-byte signed delta) and the
arrival-time deltas in 250 µs ticks. The format is drawn in ``docs/media.md``;
:func:`codec.media.packet.parse_packet` dispatches feedback datagrams here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ErrorCode, LocalProtocolError
from ._wire import PacketKind, first_byte, pack
from .errors import PacketError

__all__ = [
    "FEEDBACK_HEADER_SIZE",
    "FEEDBACK_TICK_US",
    "MAX_FEEDBACK_STATUSES",
    "FeedbackPacket",
    "parse_feedback",
]

MAX_FEEDBACK_STATUSES = 500
"""Most transport sequence numbers one feedback packet reports (≤ 1,135 bytes)."""

FEEDBACK_TICK_US = 250
"""Unit of the reference time and of arrival offsets, in microseconds."""

_FEEDBACK = struct.Struct(">BBHHI")
_I16 = struct.Struct(">h")
FEEDBACK_HEADER_SIZE = _FEEDBACK.size

_STATUS_LOST, _STATUS_SMALL, _STATUS_LARGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class FeedbackPacket:
    """Transport-wide congestion feedback for one hop (receiver → sender).

    Reports, for ``len(arrivals)`` consecutive transport sequence numbers from
    ``base_seq``, whether each packet arrived and when, on the receiver's clock
    in units of :data:`FEEDBACK_TICK_US` (250 µs). Only differences of arrival
    times are meaningful: the two clocks are not synchronised.
    """

    feedback_seq: int
    """Counts feedback packets (8 bits, wraps) so a lost one is noticed."""
    base_seq: int
    """Transport sequence number of the first packet reported (16 bits)."""
    reference_time: int
    """Receiver clock in 250 µs ticks, modulo 2**32; arrivals are relative to it."""
    arrivals: tuple[int | None, ...]
    """Per packet from ``base_seq``: arrival time minus ``reference_time`` in
    ticks, or None when the packet has not been received."""

    @classmethod
    def from_arrival_times(
        cls, feedback_seq: int, base_seq: int, arrival_times_s: Sequence[float | None]
    ) -> FeedbackPacket:
        """Build feedback from arrival times in seconds (None for a lost packet),
        one per transport sequence number from ``base_seq``. The reference time
        is the first received packet's arrival."""
        ticks = [
            None if t is None else round(t * 1_000_000 / FEEDBACK_TICK_US)
            for t in arrival_times_s
        ]
        reference = next((t for t in ticks if t is not None), 0)
        return cls(
            feedback_seq=feedback_seq,
            base_seq=base_seq,
            reference_time=reference & 0xFFFFFFFF,
            arrivals=tuple(None if t is None else t - reference for t in ticks),
        )

    def serialize(self) -> bytes:
        """The datagram bytes: 10-byte header, 2-bit statuses, then deltas.

        Raises :class:`~codec.errors.LocalProtocolError` when the feedback covers
        too many packets or two consecutive arrivals are more than ±8.19 s apart:
        split it into several feedback packets.
        """
        count = len(self.arrivals)
        if count > MAX_FEEDBACK_STATUSES:
            raise LocalProtocolError(
                f"feedback for {count} packets is over {MAX_FEEDBACK_STATUSES}",
                ErrorCode.TOO_LARGE,
            )
        header = pack(
            _FEEDBACK,
            "feedback",
            first_byte(PacketKind.FEEDBACK),
            self.feedback_seq,
            self.base_seq,
            count,
            self.reference_time,
        )
        statuses = bytearray((count + 3) // 4)
        deltas = bytearray()
        previous = 0
        for index, arrival in enumerate(self.arrivals):
            if arrival is None:
                continue
            delta = arrival - previous
            previous = arrival
            if 0 <= delta <= 0xFF:
                status = _STATUS_SMALL
                deltas.append(delta)
            elif -0x8000 <= delta <= 0x7FFF:
                status = _STATUS_LARGE
                deltas += _I16.pack(delta)
            else:
                raise LocalProtocolError(
                    f"arrival delta of {delta} ticks does not fit 16 bits: "
                    "split the feedback",
                    ErrorCode.INVALID_ARGUMENT,
                )
            statuses[index >> 2] |= status << (6 - 2 * (index & 3))
        return header + statuses + deltas


def parse_feedback(view: memoryview) -> FeedbackPacket:
    """Parse a feedback datagram whose byte 0 has already been checked."""
    if len(view) < _FEEDBACK.size:
        raise PacketError(f"feedback datagram of {len(view)} bytes is truncated")
    _, feedback_seq, base_seq, count, reference_time = _FEEDBACK.unpack_from(view)
    if count > MAX_FEEDBACK_STATUSES:
        raise PacketError(f"feedback for {count} packets is over the limit")
    pos = _FEEDBACK.size
    end = len(view)
    statuses = view[pos : pos + (count + 3) // 4]
    if len(statuses) * 4 < count:
        raise PacketError("feedback status vector is truncated")
    pos += len(statuses)
    arrivals: list[int | None] = []
    arrival = 0
    for index in range(count):
        status = (statuses[index >> 2] >> (6 - 2 * (index & 3))) & 0b11
        if status == _STATUS_LOST:
            arrivals.append(None)
            continue
        if status == _STATUS_SMALL and pos < end:
            arrival += view[pos]
            pos += 1
        elif status == _STATUS_LARGE and pos + 2 <= end:
            arrival += _I16.unpack_from(view, pos)[0]
            pos += 2
        else:
            raise PacketError(f"feedback status {status} is reserved or truncated")
        arrivals.append(arrival)
    if pos != end:
        raise PacketError(f"{end - pos} stray bytes after the feedback deltas")
    return FeedbackPacket(feedback_seq, base_seq, reference_time, tuple(arrivals))
