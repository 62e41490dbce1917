"""Arithmetic on wrapping counters: sequence numbers, frame numbers, timestamps.

The media header carries 16-bit sequence and frame numbers and 32-bit timestamps,
as RTP does. Two values are compared by their shortest signed distance on the
circle (:func:`seq_delta`); a stream of values is turned into an ever-growing
integer by an :class:`Unwrapper`, as libwebrtc's ``SeqNumUnwrapper`` does.
"""

from __future__ import annotations

__all__ = ["Unwrapper", "seq_delta"]


def seq_delta(a: int, b: int, bits: int = 16) -> int:
    """Signed distance from ``b`` to ``a`` modulo ``2**bits``.

    The result lies in ``[-2**(bits-1), 2**(bits-1))``: positive when ``a`` is
    newer than ``b``. ``seq_delta(0, 65535) == 1``.
    """
    half = 1 << (bits - 1)
    return ((a - b + half) & ((1 << bits) - 1)) - half


class Unwrapper:
    """Extends a wrapping ``bits``-wide counter into an unbounded integer.

    Each value is placed at the shortest distance from the previous one, so
    reordering by less than half the counter's range is handled. The first value
    unwraps to itself.
    """

    __slots__ = ("_bits", "_last")

    def __init__(self, bits: int = 16) -> None:
        self._bits = bits
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        """Return ``value`` (taken modulo ``2**bits``) as an unbounded integer."""
        if self._last is None:
            self._last = value & ((1 << self._bits) - 1)
        else:
            self._last += seq_delta(value, self._last, self._bits)
        return self._last
