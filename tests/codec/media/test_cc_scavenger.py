"""The file connections' controller on a virtual clock: alone it fills the
path, beside a flow that builds a queue it takes what that flow leaves, and it
takes the whole path back when that flow stops (issue 14, item 6)."""

from __future__ import annotations

import pytest
from aioquic.quic.congestion.base import create_congestion_control
from aioquic.quic.congestion.reno import RenoCongestionControl

from codec.media.cc import (
    MediaCongestionControl,
    ScavengerCongestionControl,
    register_scavenger_congestion_control,
)
from codec.media.cc.scavenger import TARGET_S
from netsim import LinkConfig

from .adapt_sim import AdaptSim, Sample, between, mean
from .cc_sim import MSS, BottleneckSim, SharedBottleneck

LINK = LinkConfig(rate_bps=5_000_000, delay_s=0.025, queue_delay_s=0.3)
ACK_DELAY_S = 0.025
MEDIA_BPS = 2_500_000


HOST_NOISE_S = 0.004
"""Mean extra delay of the file flow's ACKs on a loaded Python host (a
stall of the event loop holds up every ACK behind it)."""


def _flow(cc: object, app_rate=lambda now: None, noise_s: float = 0.0) -> BottleneckSim:
    return BottleneckSim(
        cc=cc,  # type: ignore[arg-type]
        link=LINK,
        ack_delay_s=ACK_DELAY_S,
        app_rate_bps=app_rate,
        ack_noise_s=noise_s,
    )


def test_registered_under_its_name() -> None:
    name = register_scavenger_congestion_control()
    cc = create_congestion_control(name, max_datagram_size=MSS)
    assert isinstance(cc, ScavengerCongestionControl)


def test_alone_it_fills_the_path_with_a_short_queue() -> None:
    sim = _flow(ScavengerCongestionControl(max_datagram_size=MSS))
    sim.run_until(12.0)
    assert sim.goodput_bps(4.0, 12.0) > 0.85 * LINK.rate_bps
    queue = sorted(sim.queue_delays(4.0, 12.0))
    assert queue[int(0.95 * len(queue))] < 3 * TARGET_S


def _share(file_cc: object) -> tuple[BottleneckSim, BottleneckSim]:
    """A best-effort flow (Reno: it fills the queue, as the media's estimate
    would grow into any room) for 20 s beside a file flow for 30 s."""
    shared = SharedBottleneck(LINK)
    other = shared.add(
        _flow(
            RenoCongestionControl(max_datagram_size=MSS),
            lambda now: None if now < 20.0 else 1.0,
        )
    )
    files = shared.add(_flow(file_cc))
    shared.run_until(30.0)
    return other, files


def test_it_leaves_the_path_to_a_flow_that_builds_a_queue() -> None:
    other, files = _share(ScavengerCongestionControl(max_datagram_size=MSS))
    assert files.goodput_bps(8.0, 20.0) < 0.15 * LINK.rate_bps
    assert other.goodput_bps(8.0, 20.0) > 0.75 * LINK.rate_bps
    assert files.goodput_bps(8.0, 20.0) > 0.0


def test_it_takes_the_path_back_when_that_flow_stops() -> None:
    _, files = _share(ScavengerCongestionControl(max_datagram_size=MSS))
    assert files.goodput_bps(23.0, 30.0) > 0.85 * LINK.rate_bps


def _meeting_beside(
    file_cc: object, noise_s: float = 0.0
) -> tuple[list[Sample], BottleneckSim]:
    """The media stack (estimate, pacer, a model encoder of up to 2.5 Mbit/s)
    for 20 s beside a file flow for 30 s, one 5 Mbit/s bottleneck."""
    shared = SharedBottleneck(LINK)
    media = AdaptSim(
        LINK, shared_link=shared.tap(), return_delay_s=ACK_DELAY_S, max_bps=MEDIA_BPS
    )
    files = shared.add(_flow(file_cc, noise_s=noise_s))
    media.each_tick = files.run_until
    samples = media.run(20.0)
    files.run_until(30.0)
    return samples, files


@pytest.mark.parametrize("noise_s", [0.0, HOST_NOISE_S], ids=["quiet", "loaded"])
def test_the_media_keep_their_rate_and_the_file_moves_at_what_is_left(
    noise_s: float,
) -> None:
    """On a quiet host, and on a loaded one whose late ACKs the target follows.
    The file took 1.98 Mbit/s of the 2.5 left (quiet) with a 5 ms target and
    a gain of 1, 2.30 now; 2.27-2.38 over five seeds of the loaded host."""
    samples, files = _meeting_beside(
        ScavengerCongestionControl(max_datagram_size=MSS), noise_s=noise_s
    )
    steady = between(samples, 8.0, 20.0)
    assert mean(s.estimate_bps for s in steady) > 0.9 * MEDIA_BPS
    delays = sorted(s.delay_s for s in steady)
    assert delays[int(0.95 * len(delays))] < LINK.delay_s + 0.030
    assert files.goodput_bps(8.0, 20.0) > 0.85 * (LINK.rate_bps - MEDIA_BPS)
    # The whole path back within 3 s of the media stopping.
    assert files.goodput_bps(23.0, 30.0) > 0.85 * LINK.rate_bps


def test_alone_on_a_loaded_host_it_still_fills_the_path() -> None:
    """The host's late ACKs are noise, not a queue: the target follows it."""
    sim = _flow(ScavengerCongestionControl(max_datagram_size=MSS), noise_s=HOST_NOISE_S)
    sim.run_until(12.0)
    assert sim.goodput_bps(4.0, 12.0) > 0.85 * LINK.rate_bps


def test_on_a_heavily_loaded_host_the_file_still_moves() -> None:
    """ACKs late by 8 ms on average: with a fixed 5 ms target the file moved
    at 0.4 Mbit/s beside the media and 0.8 after them. Following the spread it
    moves, and the media keep most of their rate (not all: the limit). After
    the media it takes the path back slowly (2.6-3.3 of 5 Mbit/s over five
    seeds from 3 to 10 s after, 3.1-3.5 with the 5 ms target and twice the
    gain of before): an upload pump's connection goes back to the media
    controller when its meeting ends, so this is the case of a meeting's end
    it was not told of."""
    samples, files = _meeting_beside(
        ScavengerCongestionControl(max_datagram_size=MSS), noise_s=2 * HOST_NOISE_S
    )
    steady = between(samples, 8.0, 20.0)
    assert mean(s.estimate_bps for s in steady) > 0.75 * MEDIA_BPS
    assert files.goodput_bps(8.0, 20.0) > 0.5 * (LINK.rate_bps - MEDIA_BPS)
    assert files.goodput_bps(23.0, 30.0) > 0.5 * LINK.rate_bps


def test_beside_the_connections_own_controller_the_media_lose_their_rate() -> None:
    """What an upload does that knows of no meeting (the media controller, as
    every connection but a pump's in a meeting runs): the file
    flow takes part of the media's room and keeps the queue moving (the
    media's estimate averaged 1.58 Mbit/s here while it grew past each
    capacity it had seen, 1.93 held under it)."""
    samples, _ = _meeting_beside(MediaCongestionControl(max_datagram_size=MSS))
    steady = between(samples, 8.0, 20.0)
    assert mean(s.estimate_bps for s in steady) < 0.85 * MEDIA_BPS
