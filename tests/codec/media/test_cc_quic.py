"""The media congestion controller inside real aioquic connections, through netsim.

Two aioquic connections on QuicPair's virtual clock, both running the controller
by name as the server and the client do; a bulk stream through an impaired link.
Virtual time makes every figure the same on any machine.
"""

from __future__ import annotations

import statistics

from aioquic.quic.congestion.base import register_congestion_control

from codec.media.cc import CONGESTION_CONTROL_NAME, MediaCongestionControl
from codec.media.cc.tuning import MIN_WINDOW_PACKETS
from netsim import LinkConfig, ScheduleStep
from tests.ccbulk import run_bulk

RATE_BPS = 10e6
LOSSY = LinkConfig(delay_s=0.02, loss=0.02, rate_bps=RATE_BPS, queue_delay_s=0.1)


def test_a_bulk_stream_on_a_lossy_link_moves_far_more_than_with_reno() -> None:
    ours = run_bulk(CONGESTION_CONTROL_NAME, LOSSY, duration_s=6.0)
    reno = run_bulk("reno", LOSSY, duration_s=6.0)
    ours_bps = ours.goodput_bps(2.0, 6.0)
    reno_bps = reno.goodput_bps(2.0, 6.0)
    assert ours_bps >= 0.75 * RATE_BPS
    assert ours_bps >= 2 * reno_bps
    # Full use without a standing queue: the link's 100 ms buffer stays short.
    assert statistics.median(ours.queue_delays(2.0, 6.0)) < 0.020


def test_chat_beside_an_upload_does_not_wait_behind_a_queue() -> None:
    # A deep buffer (1000 packets, two seconds at 5 Mbit/s) that a loss-based
    # controller would fill; a chat message every 100 ms beside the upload.
    deep = LinkConfig(delay_s=0.02, rate_bps=5e6, queue_delay_s=None)
    result = run_bulk(
        CONGESTION_CONTROL_NAME, deep, duration_s=6.0, chat_interval_s=0.1
    )
    assert len(result.chat_received) >= len(result.chat_sent) - 2
    delays = result.chat_delays()
    # One-way propagation is 20 ms; the rest is the queue and the upload's
    # packets ahead of each message.
    assert statistics.median(delays) < 0.045
    assert max(delays) < 0.080
    assert result.goodput_bps(2.0, 6.0) >= 0.8 * 5e6


class _Observed(MediaCongestionControl):
    """The controller, recording the window each persistent congestion left."""

    windows_after_persistent_congestion: list[tuple[int, int]] = []
    """(window, the window's floor) in bytes, at each persistent congestion."""

    def __init__(self, *, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.floor = MIN_WINDOW_PACKETS * max_datagram_size

    def on_persistent_congestion(self) -> None:
        super().on_persistent_congestion()
        self.windows_after_persistent_congestion.append(
            (self.congestion_window, self.floor)
        )


def test_a_blackhole_is_persistent_congestion_and_the_flow_recovers() -> None:
    register_congestion_control("quicmeet-observed", _Observed)
    _Observed.windows_after_persistent_congestion = []
    outage = [
        ScheduleStep(2.0, {"blackhole": True}),
        ScheduleStep(3.5, {"blackhole": False}),
    ]
    link = LinkConfig(delay_s=0.02, rate_bps=RATE_BPS, queue_delay_s=0.1)
    result = run_bulk("quicmeet-observed", link, duration_s=7.0, up_schedule=outage)
    # aioquic declared persistent congestion once the outage's losses were known;
    # the window fell to its floor, and startup found the capacity again.
    windows = _Observed.windows_after_persistent_congestion
    assert windows and all(window == floor for window, floor in windows)
    assert result.goodput_bps(2.1, 3.4) == 0
    assert result.goodput_bps(5.0, 7.0) >= 0.75 * RATE_BPS
