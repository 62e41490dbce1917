"""Why each freeze happened: what the receiver knew of the picture that ended
it, for the stats file.

A freeze ends with a picture; whether it came late (a repair slower than the
playout delay covers), after pictures the decoder hid (a frame was skipped and
the picture stayed damaged until an intra refresh or a keyframe), or on time
after frames that never came, says where to look. On the loop,
:class:`RepairTracker` notes for each frame what its recovered packets took
(the gap seen, the NACK sent, the retransmission's arrival: a NACK sent late
means the loop was late, two requests mean a NACK or its retransmission was
lost); the receiver hands that as a :class:`FrameTrace` with the frame to the
decode and render threads, and :class:`FreezeLog` keeps one record per
freeze.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from codec.media.recovery import Recovery

__all__ = ["FrameRepair", "FrameTrace", "FreezeLog", "RepairTracker"]

MAX_RECORDS = 200
"""Freezes recorded per track (the counters go on past it)."""
_MAX_TRACKED_FRAMES = 256


@dataclass(slots=True)
class FrameRepair:
    """What completing one frame took on this hop (seconds)."""

    recovered: int = 0
    """Its packets that came after a gap was seen (asked for or reordered)."""
    retried: int = 0
    """Of those, packets asked for twice before they came."""
    nack_delay_s: float = 0.0
    """The longest wait from a gap seen to its first NACK (the loop's lateness
    or the NACK rate limit)."""
    repair_s: float = 0.0
    """The longest wait from a first NACK to the packet's arrival: about this
    hop's round trip when the SFU answered from its cache, more when the
    packet was lost before the SFU too, or queued behind video."""


class FrameTrace(NamedTuple):
    """What the receiver knew of one frame when it was whole (seconds)."""

    repair: FrameRepair | None
    """Its recovered packets, None when none were missing."""
    buffered_s: float
    """From its first packet's arrival until it was whole and in order."""
    lateness_s: float
    """How much later than the fastest recent frame it was whole (what the
    playout delay has to cover)."""
    playout_delay_s: float
    skipped_before: int
    """Frames given up just before it (they never reach the decoder)."""
    timer_late_s: float
    """The latest a NACK or frame-buffer timer fired since the previous
    frame (a loop stalled by other work)."""
    rtt_s: float
    """This hop's round trip as the receiver knew it."""
    hidden_before: int = 0
    """Pictures decoded but hidden just before it (damaged by a skip)."""


class RepairTracker:
    """Collects, by frame, how its missing packets came back (on the loop)."""

    def __init__(self) -> None:
        self._frames: dict[int, FrameRepair] = {}

    def on_recovered(self, frame_number: int, recovery: Recovery) -> None:
        """Packet of 16-bit ``frame_number`` that was missing came back."""
        repair = self._frames.get(frame_number)
        if repair is None:
            if len(self._frames) >= _MAX_TRACKED_FRAMES:
                del self._frames[next(iter(self._frames))]
            repair = self._frames[frame_number] = FrameRepair()
        repair.recovered += 1
        repair.retried += recovery.requests >= 2
        asked = recovery.first_request_at
        if asked is not None:
            repair.nack_delay_s = max(repair.nack_delay_s, asked - recovery.seen_at)
            repair.repair_s = max(repair.repair_s, recovery.arrived_at - asked)

    def take(self, frame_number: int) -> FrameRepair | None:
        """The repairs of 16-bit ``frame_number`` (forgotten after)."""
        return self._frames.pop(frame_number & 0xFFFF, None)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class FreezeLog:
    """The freezes of one track, each with what ended it (render thread)."""

    def __init__(self, frame_interval_s: float) -> None:
        self.frame_interval_s = frame_interval_s
        self.records: list[dict[str, object]] = []

    def record(
        self,
        at_s: float,
        gap_s: float,
        frame_number: int,
        frames_between: int,
        late_s: float,
        trace: FrameTrace | None,
    ) -> None:
        """A freeze of ``gap_s`` ended at ``at_s`` (seconds since the first
        picture) by picture ``frame_number``, shown ``late_s`` after its
        playout time, ``frames_between`` frame numbers after the previous
        picture."""
        if len(self.records) >= MAX_RECORDS:
            return
        record: dict[str, object] = {
            "at_s": round(at_s, 2),
            "gap_ms": _ms(gap_s),
            "frame": frame_number,
            "frames_between": frames_between,
            "late_ms": _ms(late_s),
            "cause": self._cause(late_s, trace),
        }
        if trace is not None:
            record.update(
                skipped_before=trace.skipped_before,
                hidden_before=trace.hidden_before,
                buffered_ms=_ms(trace.buffered_s),
                lateness_ms=_ms(trace.lateness_s),
                playout_delay_ms=_ms(trace.playout_delay_s),
                timer_late_ms=_ms(trace.timer_late_s),
                rtt_ms=_ms(trace.rtt_s),
            )
            repair = trace.repair
            if repair is not None:
                record.update(
                    recovered=repair.recovered,
                    retried=repair.retried,
                    nack_delay_ms=_ms(repair.nack_delay_s),
                    repair_ms=_ms(repair.repair_s),
                )
        self.records.append(record)

    def _cause(self, late_s: float, trace: FrameTrace | None) -> str:
        if trace is not None and (trace.hidden_before or trace.skipped_before):
            return "frame skipped"
        if late_s > self.frame_interval_s:
            if trace is not None and trace.repair is not None:
                return "late repair"
            return "late frame"
        return "no frame"
