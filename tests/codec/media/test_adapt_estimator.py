"""The bandwidth estimate, pure: detector, AIMD, probes, and whole runs of a
video flow through a netsim bottleneck on a virtual clock (``adapt_sim``)."""

from __future__ import annotations

import pytest

from codec.media import FeedbackPacket
from codec.media.adapt import (
    AimdRateControl,
    BandwidthEstimator,
    DelayDetector,
    PacketResult,
    ProbeController,
    Usage,
    probe_result,
)
from codec.media.adapt.estimator import LOSSY_FLOOR_BPS, LOSSY_HOLD_S, LOSSY_SHARE
from netsim import LinkConfig, ScheduleStep

from .adapt_sim import AdaptSim, between, mean


def _results(
    count: int, send_gap: float, arrival_gap: float, start: int = 0
) -> list[PacketResult]:
    return [
        PacketResult(
            seq=start + i,
            size=1000,
            sent_at=(start + i) * send_gap,
            arrived_at=1.0 + (start + i) * arrival_gap,
        )
        for i in range(count)
    ]


def _feed(detector: DelayDetector, arrival_gaps: list[float]) -> list[Usage]:
    """Packets sent every 10 ms arriving ``arrival_gaps`` apart, ten per
    feedback; the detector's verdict after each feedback."""
    results = []
    arrival = 1.0
    for seq, gap in enumerate(arrival_gaps):
        arrival += gap
        results.append(PacketResult(seq, 1000, seq * 0.01, arrival))
    return [detector.update(results[i : i + 10]) for i in range(0, len(results), 10)]


def test_the_detector_tells_a_growing_queue_from_a_steady_one() -> None:
    assert set(_feed(DelayDetector(), [0.01] * 200)) == {Usage.NORMAL}
    assert Usage.OVERUSE in _feed(DelayDetector(), [0.012] * 200)
    draining = _feed(DelayDetector(), [0.01] * 200 + [0.008] * 100)
    assert Usage.UNDERUSE in draining[20:]
    assert Usage.OVERUSE not in draining


def test_aimd_cuts_to_beta_of_what_arrived_then_grows_multiplicatively() -> None:
    rate = AimdRateControl(1_000_000, 50_000, 5_000_000)
    rate.rtt_s = 0.1
    assert rate.update(Usage.OVERUSE, 800_000, 0.0) == pytest.approx(680_000)
    # A second overuse within a round trip does not cut again.
    assert rate.update(Usage.OVERUSE, 600_000, 0.05) == pytest.approx(680_000)
    assert rate.update(Usage.UNDERUSE, 600_000, 0.1) == pytest.approx(680_000)
    fresh = AimdRateControl(500_000, 50_000, 5_000_000)
    fresh.update(Usage.NORMAL, 500_000, 0.0)
    assert fresh.update(Usage.NORMAL, 500_000, 1.0) == pytest.approx(540_000)
    # Never far above what the path has shown it carries.
    capped = AimdRateControl(500_000, 50_000, 5_000_000)
    capped.update(Usage.NORMAL, 100_000, 0.0)
    assert capped.update(Usage.NORMAL, 100_000, 1.0) == pytest.approx(500_000)


def test_a_probe_result_is_the_slower_of_sending_and_receiving() -> None:
    fast_path = _results(6, 0.001, 0.001)
    assert probe_result(fast_path) == pytest.approx(8_000_000)
    bottleneck = _results(6, 0.001, 0.004)
    assert probe_result(bottleneck) == pytest.approx(2_000_000)
    lost = [
        r if r.seq < 3 else PacketResult(r.seq, r.size, r.sent_at, None)
        for r in fast_path
    ]
    assert probe_result(lost) is None
    assert probe_result(fast_path[:3]) is None
    # Arrivals read in one go by a busy receiver measure nothing.
    bunched = _results(6, 0.004, 0.0005)
    assert probe_result(bunched) is None


RFC8867_STEPS = [
    ScheduleStep(20, {"rate_bps": 2.5e6}),
    ScheduleStep(40, {"rate_bps": 0.6e6}),
    ScheduleStep(60, {"rate_bps": 1e6}),
]


def test_capacity_steps_are_followed_with_a_short_queue() -> None:
    sim = AdaptSim(
        LinkConfig(delay_s=0.05, rate_bps=1e6, queue_delay_s=0.3), RFC8867_STEPS
    )
    samples = sim.run(80)
    for start, end, capacity in ((5, 20, 1e6), (25, 40, 2.5e6), (65, 80, 1e6)):
        used = mean(s.sent_bps for s in between(samples, start, end)) / capacity
        assert 0.75 <= used <= 1.05, (start, used)
    # After the drop to 0.6 Mbit/s the queue is gone within 3 s.
    after_drop = between(samples, 43, 60)
    assert max(s.delay_s for s in after_drop) < 0.05 + 0.2
    assert mean(s.sent_bps for s in between(samples, 45, 60)) <= 0.6e6
    # Probing finds the capacity at the start within 2 s.
    assert between(samples, 2, 3)[0].estimate_bps >= 0.7e6


def test_random_loss_does_not_cut_the_rate() -> None:
    link = LinkConfig(
        delay_s=0.05, jitter_s=0.02, rate_bps=1.5e6, queue_delay_s=0.3, loss=0.02
    )
    sim = AdaptSim(link)
    samples = sim.run(30)
    # The estimate stays at the capacity; the media sent is its lossy share.
    late = between(samples, 10, 30)
    assert mean(s.estimate_bps for s in late) >= 0.75 * 1.5e6
    assert mean(s.sent_bps for s in late) >= 0.75 * LOSSY_SHARE * 1.5e6


def test_heavy_loss_cuts_the_rate() -> None:
    light = AdaptSim(LinkConfig(delay_s=0.05, rate_bps=1.5e6, loss=0.02))
    heavy = AdaptSim(LinkConfig(delay_s=0.05, rate_bps=1.5e6, loss=0.25))
    light_rate = mean(s.estimate_bps for s in between(light.run(20), 10, 20))
    heavy_rate = mean(s.estimate_bps for s in between(heavy.run(20), 10, 20))
    assert heavy_rate < 0.6 * light_rate


def test_a_slow_link_from_the_start_keeps_the_queue_short() -> None:
    sim = AdaptSim(LinkConfig(delay_s=0.05, rate_bps=300_000, queue_delay_s=0.3))
    samples = sim.run(20)
    steady = between(samples, 5, 20)
    assert mean(s.sent_bps for s in steady) <= 300_000
    assert mean(s.sent_bps for s in steady) >= 0.6 * 300_000
    delays = sorted(s.delay_s for s in steady)
    assert delays[int(0.95 * len(delays))] < 0.05 + 0.2
    assert sim.frames_sent >= 20 * 30 * 0.8


def test_probing_stops_once_a_result_reaches_the_maximum() -> None:
    # A publisher on loopback: every cluster comes back at the rate it was
    # sent. Once a result reaches the estimate's maximum there is nothing more
    # to find (bench/loss.py's loopback publisher sent 238-258 clusters in
    # 15 s, about 4 Mbit/s of padding, before this stopped).
    controller = ProbeController(4_000_000)
    clusters = controller.start(1_000_000, 0.0)
    rounds = 0
    while clusters and rounds < 10:
        rounds += 1
        further = []
        for cluster in clusters:
            further += controller.on_result(cluster.cluster_id, cluster.rate_bps, 0.1)
        clusters = further
    assert rounds < 10
    assert controller.clusters_sent <= 4


def test_a_probe_that_measured_nothing_is_tried_again_within_a_second() -> None:
    # Steps scenario, capacity up from 1 to 2.5 Mbit/s: the first periodic
    # cluster after the rise came back bunched by the receiver's loop (void);
    # the next waited the whole 5 s period while the estimate grew 8% a
    # second (2.5 Mbit/s used from 48 s instead of 44 s).
    controller = ProbeController(4_000_000)
    controller.start(1_000_000, 0.0)
    controller.periodic(1_000_000, True, 0.0)  # the start's clusters still out
    for cluster_id in (0, 1):
        controller.on_result(cluster_id, 500_000, 0.2)
    first = controller.periodic(1_000_000, True, 10.0)
    assert len(first) == 1
    controller.void(first[0].cluster_id, 10.2)
    assert controller.periodic(1_000_000, True, 11.1) == []
    again = controller.periodic(1_000_000, True, 11.2)
    assert len(again) == 1
    # Void again: one more quick retry, then the period (a receiver that
    # bunches every cluster is not probed every second).
    controller.void(again[0].cluster_id, 11.4)
    third = controller.periodic(1_000_000, True, 12.4)
    assert len(third) == 1
    controller.void(third[0].cluster_id, 12.6)
    assert controller.periodic(1_000_000, True, 13.6) == []
    assert controller.periodic(1_000_000, True, 17.3) == []  # 5 s after 12.4
    later = controller.periodic(1_000_000, True, 17.5)
    assert len(later) == 1
    # A cluster that measured something ends the streak; the next void is
    # retried quickly again.
    controller.on_result(later[0].cluster_id, 900_000, 17.7)
    fifth = controller.periodic(1_000_000, True, 22.6)
    controller.void(fifth[0].cluster_id, 22.8)
    sixth = controller.periodic(1_000_000, True, 23.8)
    assert len(sixth) == 1
    # Not while the path is not calm.
    controller.void(sixth[0].cluster_id, 24.0)
    assert controller.periodic(1_000_000, False, 25.1) == []


def _steady(
    estimator: BandwidthEstimator, start: float, seconds: float, lose_every: int
) -> float:
    """800 kbit/s of 1,000-byte packets, every ``lose_every``-th lost (0:
    none), reported every 50 ms; the time at the end."""
    now = start
    seq = round(start * 100)
    while now < start + seconds - 1e-9:
        base = seq
        arrivals: list[float | None] = []
        for _ in range(5):
            estimator.on_sent(seq & 0xFFFF, 1000, now)
            lost = lose_every and seq % lose_every == 0
            arrivals.append(None if lost else now + 0.02)
            seq += 1
            now = round(now + 0.01, 6)
        feedback = FeedbackPacket.from_arrival_times(
            seq & 0xFF, base & 0xFFFF, arrivals
        )
        estimator.on_feedback(feedback, now)
    return now


def test_a_lossy_path_gives_media_a_share_of_an_estimate_it_does_not_cut() -> None:
    estimator = BandwidthEstimator(1_500_000)
    now = _steady(estimator, 0.0, 3.0, lose_every=0)
    assert estimator.media_bps(now) == estimator.target_bps
    now = _steady(estimator, now, 3.0, lose_every=40)  # 2.5% random loss
    assert estimator.target_bps >= 1_500_000
    assert estimator.media_bps(now) == pytest.approx(LOSSY_SHARE * estimator.target_bps)
    # Loss gone: the whole estimate again, once the hold has passed.
    now = _steady(estimator, now, LOSSY_HOLD_S + 2.0, lose_every=0)
    assert estimator.media_bps(now) == estimator.target_bps


def test_the_lossy_share_leaves_a_slow_path_its_frame_rate() -> None:
    # Halving a low estimate would cost frame rate, not sharpness.
    estimator = BandwidthEstimator(700_000, max_bps=800_000)
    now = _steady(estimator, 0.0, 3.0, lose_every=40)
    assert estimator.media_bps(now) == LOSSY_FLOOR_BPS
    slow = BandwidthEstimator(400_000, max_bps=400_000)
    now = _steady(slow, 0.0, 3.0, lose_every=40)
    assert slow.media_bps(now) == slow.target_bps == 400_000
