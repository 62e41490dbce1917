"""Mahimahi packet-delivery traces: link capacity that varies over time.

A trace file lists one integer per line: a time in milliseconds at which the link
may deliver one 1500-byte packet (a *delivery opportunity*). Repeating a timestamp
gives several opportunities in the same millisecond. When the trace runs out it
starts over, shifted by its last timestamp, so a trace whose last line is 1000
describes one second of capacity, repeated. Traces recorded by Mahimahi (``mm-link``)
and the cellular traces published with it load unchanged.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .errors import ParameterError

__all__ = ["Trace", "TraceCursor"]

_FORM = (
    "a Mahimahi trace: one integer millisecond timestamp per line, "
    "non-decreasing, the last one above 0"
)


@dataclass(frozen=True)
class Trace:
    """The delivery opportunities of a Mahimahi trace.

    ``opportunities_ms`` are the timestamps in milliseconds, non-decreasing; the trace
    repeats every ``period_ms`` (its last timestamp). ``source`` names where it came
    from, for messages.
    """

    PACKET_BYTES: ClassVar[int] = 1500

    opportunities_ms: tuple[int, ...]
    source: str = field(default="<trace>", compare=False)

    def __post_init__(self) -> None:
        if not self.opportunities_ms:
            raise ParameterError(f"trace {self.source}", "it has no timestamps", _FORM)
        previous = 0
        for number, value in enumerate(self.opportunities_ms, start=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ParameterError(
                    f"trace {self.source} line {number}",
                    f"{value!r} is not a whole number of milliseconds",
                    _FORM,
                )
            if value < previous:
                raise ParameterError(
                    f"trace {self.source} line {number}",
                    f"{value} ms comes after {previous} ms (time goes backwards)",
                    _FORM,
                )
            previous = value
        if previous == 0:
            raise ParameterError(
                f"trace {self.source}",
                "its last timestamp is 0, so it cannot repeat",
                _FORM,
            )

    @classmethod
    def parse(cls, text: str, source: str = "<trace>") -> Trace:
        """Read a trace from the text of a trace file; blank lines are ignored."""
        values: list[int] = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            try:
                values.append(int(line))
            except ValueError:
                raise ParameterError(
                    f"trace {source} line {number}",
                    f"{line!r} is not a whole number of milliseconds",
                    _FORM,
                ) from None
        return cls(tuple(values), source)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace file; raises ``OSError`` if it cannot be read."""
        path = Path(path)
        return cls.parse(path.read_text(encoding="ascii"), str(path))

    @property
    def period_ms(self) -> int:
        """How long one pass of the trace lasts, in milliseconds."""
        return self.opportunities_ms[-1]

    @property
    def mean_rate_bps(self) -> float:
        """The capacity averaged over one period, in bits per second."""
        bits = len(self.opportunities_ms) * self.PACKET_BYTES * 8
        return bits / (self.period_ms / 1000)


class TraceCursor:
    """Serializes packets on a trace's delivery opportunities, as Mahimahi's link does.

    Each opportunity carries up to 1500 bytes. Several small packets share one; a
    large packet spans several; bytes an opportunity does not use are lost, and a
    packet can only use an opportunity at or after the time it became ready. The
    trace's time zero is ``origin`` (seconds on the caller's clock).
    """

    # Float arithmetic on seconds must not push a packet that is ready exactly at an
    # opportunity past it.
    _EPSILON_MS = 1e-6

    def __init__(self, trace: Trace, origin: float) -> None:
        self.trace = trace
        self.origin = origin
        self._index = 0  # opportunities used so far, counted across repetitions
        self._bytes_left = 0  # unused bytes of opportunity ``_index - 1``

    def _time(self, index: int) -> float:
        repetition, position = divmod(index, len(self.trace.opportunities_ms))
        ms = repetition * self.trace.period_ms + self.trace.opportunities_ms[position]
        return self.origin + ms / 1000

    def _first_at_or_after(self, ready: float) -> int:
        elapsed_ms = (ready - self.origin) * 1000 - self._EPSILON_MS
        if elapsed_ms <= 0:
            return 0
        repetition = int(elapsed_ms // self.trace.period_ms)
        offset = elapsed_ms - repetition * self.trace.period_ms
        position = bisect.bisect_left(self.trace.opportunities_ms, offset)
        count = len(self.trace.opportunities_ms)
        return repetition * count + position

    def transmit(self, size_bytes: int, ready: float) -> tuple[float, float]:
        """Carry a packet that is ready at ``ready``; return (start, finish) in seconds.

        ``start`` is the opportunity that carries its first byte and ``finish`` the one
        that carries its last; packets must be transmitted in order.
        """
        remaining = size_bytes
        start: float | None = None
        finish = ready
        if self._bytes_left and self._time(self._index - 1) >= ready:
            start = finish = self._time(self._index - 1)
            used = min(self._bytes_left, remaining)
            self._bytes_left -= used
            remaining -= used
        if remaining > 0:
            self._index = max(self._index, self._first_at_or_after(ready))
        while remaining > 0:
            finish = self._time(self._index)
            if start is None:
                start = finish
            used = min(Trace.PACKET_BYTES, remaining)
            remaining -= used
            self._bytes_left = Trace.PACKET_BYTES - used
            self._index += 1
        return (finish if start is None else start), finish
