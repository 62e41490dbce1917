"""Why a QUIC sender stops sending: a diagnostic for ``bench/files.py --trace``.

Wraps ``QuicConnection.datagrams_to_send`` in this process and, after each
call on a connection with its 1-RTT keys, classifies what stopped the call:

- ``idle``: no stream has bytes waiting (the application feeds too slowly);
- ``cwnd``: the congestion window is full;
- ``flow_conn`` / ``flow_stream``: the peer's MAX_DATA / MAX_STREAM_DATA
  credit is used up;
- ``pacing``: aioquic's pacer holds the next packet back;
- ``other``: none of these (the call ended for another reason).

Each reason is weighted by the time until the connection's next call (the
time the sender spent in that state). Every ``SAMPLE_S`` it also records the
congestion controller's state, the RTT, the bytes in flight and the credit
left. :func:`dump` writes one JSON object per busy connection (at least
``BUSY_BYTES`` sent).

As a wrapper of a server: ``python bench/_send_trace.py OUT -m server
ARGS...`` or ``python bench/_send_trace.py OUT SCRIPT ARGS...``. This is a
benchmark tool: it reads aioquic's private state freely and is never
imported by the project.
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys
import time
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
from aioquic.quic.connection import QuicConnection

try:
    from codec.transfer_window import TransferWindow
except ImportError:  # an older checkout (bench/throughput_history.py)
    TransferWindow = None  # type: ignore[assignment, misc]

SAMPLE_S = 0.02
BUSY_BYTES = 4 * 1024 * 1024
IDLE_GAP_S = 0.5
"""A gap between two calls longer than this is the connection idling between
transfers (keepalives come every 1.5 s), not a sender held back: not counted."""
REASONS = ("idle", "cwnd", "flow_conn", "flow_stream", "pacing", "other")


class _ConnTrace:
    def __init__(self) -> None:
        self.sent_bytes = 0
        self.packets = 0
        self.calls = 0
        self.calls_with_packets = 0
        self.seconds = dict.fromkeys(REASONS, 0.0)
        self.last_reason: str | None = None
        self.last_at = 0.0
        self.next_sample = 0.0
        self.series: list[dict[str, Any]] = []

    def report(self) -> dict[str, Any]:
        total = sum(self.seconds.values()) or 1.0
        return {
            "sent_mb": round(self.sent_bytes / 1e6, 2),
            "packets": self.packets,
            "calls": self.calls,
            "packets_per_call_with_packets": round(
                self.packets / max(1, self.calls_with_packets), 2
            ),
            "time_share": {k: round(v / total, 3) for k, v in self.seconds.items()},
            "series": self.series,
        }


def _reason(quic: QuicConnection) -> str:
    loss = quic._loss
    waiting = [s for s in quic._streams.values() if not s.sender.buffer_is_empty]
    if not waiting:
        return "idle"
    if loss.bytes_in_flight + quic._max_datagram_size > loss.congestion_window:
        return "cwnd"
    if quic._remote_max_data_used >= quic._remote_max_data:
        return "flow_conn"
    if all(s.sender.next_offset >= s.max_stream_data_remote for s in waiting):
        return "flow_stream"
    if quic._pacing_at is not None:
        return "pacing"
    return "other"


def _sample(quic: QuicConnection, now: float, trace: _ConnTrace, reason: str) -> None:
    loss = quic._loss
    cc = loss._cc
    sending = [s for s in quic._streams.values() if s.sender._buffer]
    credit = min(
        (s.max_stream_data_remote - s.sender.highest_offset for s in sending),
        default=None,
    )
    bandwidth = getattr(cc, "bandwidth", None)
    min_rtt = getattr(cc, "min_rtt", None)
    mode = getattr(cc, "mode", None)
    trace.series.append(
        {
            "t": round(now, 4),
            "sent_mb": round(trace.sent_bytes / 1e6, 3),
            "cwnd": loss.congestion_window,
            "in_flight": loss.bytes_in_flight,
            "srtt_ms": round(loss._rtt_smoothed * 1e3, 3),
            "latest_rtt_ms": round(loss._rtt_latest * 1e3, 3),
            "min_rtt_ms": None if min_rtt is None else round(min_rtt * 1e3, 3),
            "bw_mb_s": None if bandwidth is None else round(bandwidth / 1e6, 2),
            "mode": None if mode is None else mode.name,
            "pacing_packet_us": None
            if loss._pacer.packet_time is None
            else round(loss._pacer.packet_time * 1e6, 1),
            "unacked": sum(len(s.sender._buffer) for s in sending),
            "stream_credit": credit,
            "conn_credit": quic._remote_max_data - quic._remote_max_data_used,
            "reason": reason,
        }
    )


_traces: dict[int, _ConnTrace] = {}
_window_events: list[dict[str, Any]] = []
"""Each time a file sender found its transfer window full (this process)."""


def _record(quic: QuicConnection, now: float, result: Any) -> None:
    trace = _traces.get(id(quic))
    if trace is None:
        trace = _traces[id(quic)] = _ConnTrace()
        trace.last_at = now
    if trace.last_reason is not None and now - trace.last_at < IDLE_GAP_S:
        trace.seconds[trace.last_reason] += max(0.0, now - trace.last_at)
    trace.calls += 1
    if result:
        trace.calls_with_packets += 1
        trace.packets += len(result)
        trace.sent_bytes += sum(len(data) for data, _ in result)
    reason = _reason(quic)
    trace.last_reason = reason
    trace.last_at = now
    if now >= trace.next_sample and trace.sent_bytes:
        trace.next_sample = now + SAMPLE_S
        _sample(quic, now, trace, reason)


def dump(path: str) -> None:
    """Write the report of the busy connections traced so far to ``path`` and
    start afresh."""
    busy = [t.report() for t in _traces.values() if t.sent_bytes >= BUSY_BYTES]
    report = {"written_at": time.time(), "connections": busy}
    report["window_full"] = list(_window_events)
    with open(path, "w") as fh:
        json.dump(report, fh)
    _traces.clear()
    _window_events.clear()


def install() -> None:
    """Trace every QUIC connection of this process from now on: aioquic's
    ``datagrams_to_send`` and the short path's (:mod:`udpio.short_path`), each
    call once, by whichever of them is outermost."""
    try:
        from udpio.short_path import ShortStreams
    except ImportError:  # an older checkout (bench/throughput_history.py)
        classes: tuple[type, ...] = (QuicConnection,)
    else:
        classes = (QuicConnection, ShortStreams)
    depth = [0]

    def traced(original: Any) -> Any:
        def datagrams_to_send(self: QuicConnection, now: float) -> Any:
            depth[0] += 1
            try:
                result = original(self, now)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and self._handshake_complete:
                _record(self, now, result)
            return result

        return datagrams_to_send

    for cls in classes:
        cls.datagrams_to_send = traced(cls.datagrams_to_send)  # type: ignore[method-assign]

    if TransferWindow is None:
        return
    full = TransferWindow.full

    def window_full(
        self: TransferWindow, position: int, confirmed: int, unsent: int
    ) -> None:
        before = self.size
        full(self, position, confirmed, unsent)
        _window_events.append(
            {
                "t": round(time.monotonic(), 4),
                "size": before,
                "after": self.size,
                "ahead": position - confirmed,
                "unsent": unsent,
            }
        )

    TransferWindow.full = window_full  # type: ignore[method-assign]


def main() -> None:
    out, target, *args = sys.argv[1:]
    install()
    atexit.register(dump, out)
    if target == "-m":
        module, *args = args
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *args]
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
