"""Recovery after a capacity drop, pure: periodic probes only when the media
leaves the estimate unused (on a virtual clock through a netsim bottleneck,
``adapt_sim``), a cut far below the capacity seen before starting a new
one, a receiver's stalls not read as a queue, and the rate held under a
known capacity (the ceiling) with its gentle probe."""

from __future__ import annotations

import random

import pytest

from codec.media import FeedbackPacket
from codec.media.adapt import (
    AimdRateControl,
    BandwidthEstimator,
    DelayDetector,
    PacketResult,
    ProbeCluster,
    Usage,
)
from netsim import LinkConfig, ScheduleStep

from .adapt_sim import AdaptSim, between, mean


def test_a_sender_that_fills_a_slow_path_is_not_probed_into_its_queue() -> None:
    # 600 kbit/s, 50 ms, 300 ms of buffer (RFC 8867 5.1's third step): a
    # probe at twice the estimate every 5 s came back at the capacity and
    # left a queue: the highest one-way delay of a 100 ms reached 190 ms.
    sim = AdaptSim(LinkConfig(delay_s=0.05, rate_bps=0.6e6, queue_delay_s=0.3))
    steady = between(sim.run(30.0), 5.0, 30.0)
    assert mean(s.sent_bps for s in steady) > 0.85 * 0.6e6
    assert max(s.delay_s for s in steady) < 0.16, max(s.delay_s for s in steady)


def _periodic_probes(estimator: BandwidthEstimator, sent_bps: float) -> list:
    """Send 1,000-byte datagrams at ``sent_bps`` for 12 s, polling; the
    periodic clusters asked for."""
    estimator.start(0.0)
    gap = 8000 / sent_bps
    probes = []
    now, seq = 0.0, 0
    while now < 12.0:
        estimator.on_sent(seq & 0xFFFF, 1000, now)
        seq += 1
        now += gap
        probes += estimator.poll(now)
    return probes


def test_an_app_limited_sender_still_probes_periodically() -> None:
    estimator = BandwidthEstimator(start_bps=1e6, max_bps=4e6)
    probes = _periodic_probes(estimator, 200e3)  # an encoder far under it
    assert probes, estimator.events
    assert probes[0].rate_bps == 2 * estimator.target_bps


def test_a_sender_whose_path_dropped_is_not_app_limited() -> None:
    # After a capacity drop what arrives falls while the sender still sends
    # its estimate: that is no time to probe at twice the estimate (in the
    # capacity steps a 5.3 Mbit/s probe went out 0.2 s after the drop to
    # 0.6 Mbit/s while the app-limited test read what arrived).
    estimator = BandwidthEstimator(start_bps=1e6, max_bps=4e6)
    estimator.acked_bps = 300e3
    assert _periodic_probes(estimator, 1e6) == []


def test_a_cut_far_below_the_last_capacity_grows_back_multiplicatively() -> None:
    # Converged at 2 Mbit/s, then the path drops to 0.6 Mbit/s: averaged
    # with the old capacity the new one kept the rate "near convergence",
    # growing about a packet per response time (1.26 Mbit/s 10 s later);
    # as a new capacity it grows 8% a second once past it.
    rate = AimdRateControl(2e6, 50e3, 4e6)
    now = 0.0
    for _ in range(3):
        rate.rate_bps = 2.2e6
        rate.update(Usage.OVERUSE, 2e6, now)
        now += 1.0
    rate.update(Usage.OVERUSE, 0.6e6, now)
    assert rate.rate_bps == 0.85e6  # at most halved in one cut
    for _ in range(200):
        now += 0.05
        rate.update(Usage.NORMAL, rate.rate_bps, now)
    assert rate.rate_bps > 1.6e6


def _stalled_arrivals(seconds: float, seed: int) -> list[PacketResult]:
    """1 Mbit/s of 1,000-byte packets (one every 8 ms) over a 50 ms path with
    no queue, stamped by a receiver whose loop stalls 10-40 ms every
    50-350 ms and then reads what waited at once."""
    rng = random.Random(seed)
    results = []
    stall_at = rng.uniform(0.0, 0.4)
    stall_until = -1.0
    sent = 0.0
    seq = 0
    while sent < seconds:
        arrival = sent + 0.05
        if arrival >= stall_at:
            stall_until = stall_at + rng.uniform(0.01, 0.04)
            stall_at += rng.uniform(0.05, 0.35)
        results.append(PacketResult(seq, 1000, sent, max(arrival, stall_until)))
        seq += 1
        sent += 0.008
    return results


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stalling_receiver_is_not_a_growing_queue(seed: int) -> None:
    # Packets a stalled loop reads at once arrive closer than they were sent:
    # they join the group before them (33 overuse verdicts in 20 s before).
    detector = DelayDetector()
    results = _stalled_arrivals(20.0, seed)
    verdicts = [detector.update(results[i : i + 6]) for i in range(0, len(results), 6)]
    assert Usage.OVERUSE not in verdicts


def _report(
    estimator: BandwidthEstimator,
    sends: list[tuple[float, int | None]],
    seq: int,
    delay_s: float,
    growth: float = 0.0,
) -> list:
    """Send 1,000-byte packets at ``sends`` ((time, probe cluster)), each
    arriving ``delay_s`` later (plus ``growth`` times its send offset: a
    growing queue); one feedback for them at the last arrival. Further
    clusters asked for."""
    arrivals: list[float | None] = []
    for i, (at, cluster) in enumerate(sends):
        estimator.on_sent((seq + i) & 0xFFFF, 1000, at, cluster)
        arrivals.append(at + delay_s + growth * (at - sends[0][0]))
    feedback = FeedbackPacket.from_arrival_times(seq & 0xFF, seq & 0xFFFF, arrivals)
    return estimator.on_feedback(feedback, max(a for a in arrivals if a))


def test_a_cut_just_after_a_probe_keeps_what_the_probe_found() -> None:
    # 400 kbit/s of media for 2 s, then a probe the path carries lifts the
    # estimate; a growing queue right after (the probe's own, or noise) cut
    # it from what had arrived before the media could follow: half of the
    # lifted estimate. Now the cut is from what the probe found.
    estimator = BandwidthEstimator(start_bps=400_000, max_bps=4_000_000)
    estimator.set_rtt(0.05)
    seq, now = 0, 0.0
    while now < 2.0:
        sends = [(now + i * 0.02, None) for i in range(5)]
        _report(estimator, sends, seq, 0.03)
        seq, now = seq + 5, now + 0.1
    cluster = estimator.start(now)[0]  # at three times the estimate
    gap = cluster.packet_bytes * 8 / cluster.rate_bps
    sends = [(now + i * gap, cluster.cluster_id) for i in range(cluster.packets)]
    _report(estimator, sends, seq, 0.03)
    seq += cluster.packets
    lifted = estimator.target_bps
    assert lifted > 700_000
    for _ in range(6):
        now += 0.1
        _report(estimator, [(now + i * 0.02, None) for i in range(5)], seq, 0.03, 0.5)
        seq += 5
    assert estimator.cuts["overuse"] >= 1
    assert estimator.target_bps > 0.7 * lifted


def test_a_sender_that_fills_its_estimate_finds_a_capacity_that_rose() -> None:
    # RFC 8867 5.1's second step, 1 -> 2.5 Mbit/s at 20 s: grown by 8% a
    # second once past the capacity seen at the last cuts, the estimate took
    # about 12 s to reach the new capacity. A probe once the path carried
    # more than that capacity finds it within seconds.
    sim = AdaptSim(
        LinkConfig(delay_s=0.05, rate_bps=1e6, queue_delay_s=0.3),
        [ScheduleStep(20.0, {"rate_bps": 2.5e6})],
    )
    samples = sim.run(35.0)
    assert mean(s.sent_bps for s in between(samples, 25.0, 35.0)) > 0.85 * 2.5e6
    # The filled 1 Mbit/s path before it was not probed into its queue.
    assert max(s.delay_s for s in between(samples, 5.0, 20.0)) < 0.16


def test_a_cut_just_after_a_probe_that_confirmed_the_estimate_keeps_its_finding() -> (
    None
):
    # RFC 8867 5.1's 2.5 Mbit/s step: the media made 1.6 Mbit/s of an
    # estimate of 2.34 (the encoder's limit); a periodic probe at twice that
    # came back at 2.44 Mbit/s, not lifting the estimate, and its own queue
    # read as overuse right after. The cut was from what the media made
    # (1.36 Mbit/s here), far under what the probe had just shown.
    estimator = BandwidthEstimator(start_bps=1e6, max_bps=4e6)
    estimator.set_rtt(0.1)
    estimator.start(0.0)  # the start's clusters, not sent: they time out
    seq, now = 0, 0.0
    estimator.rate.set_rate(2.34e6, now)
    while now < 3.0:  # 1.6 Mbit/s of 1,000-byte packets
        _report(estimator, [(now + i * 0.005, None) for i in range(10)], seq, 0.05)
        seq, now = seq + 10, now + 0.05
    estimator.rate.set_rate(2.34e6, now)
    (cluster,) = estimator.poll(now, rate_bps=4.68e6, interval_s=1.0)
    gap = 8000 / cluster.rate_bps
    sends = [(now + i * gap, cluster.cluster_id) for i in range(cluster.packets)]
    # Received at 2.44 Mbit/s: each packet 1.92 times its send spacing later.
    _report(estimator, sends, seq, 0.05, 4.68 / 2.44 - 1)
    seq += cluster.packets
    assert ("probe_result", 2_440_000) in [
        (what, round(bps, -4)) for _, what, bps in estimator.events
    ]
    assert estimator.target_bps == 2.34e6  # not lifted
    for _ in range(6):  # the probe's queue in the media after it
        now += 0.05
        sends = [(now + i * 0.005, None) for i in range(10)]
        _report(estimator, sends, seq, 0.05, 0.5)
        seq += 10
    assert estimator.cuts["overuse"] >= 1
    assert estimator.target_bps >= 0.85 * 2.44e6 * 0.95, estimator.events


def test_a_sender_near_a_known_capacity_holds_under_it() -> None:
    # RFC 8867 5.1's 0.6 Mbit/s step: grown a packet per response time past
    # the capacity seen at the last cuts, the estimate went 4% over it every
    # 4-5 s and was cut for the queue it built (a sawtooth, each tooth 80 ms
    # of queue). Held at 95% of that capacity, the rate stays, and the
    # gentle probe at the ceiling queues for a few milliseconds.
    sim = AdaptSim(LinkConfig(delay_s=0.05, rate_bps=0.6e6, queue_delay_s=0.3))
    samples = sim.run(40.0)
    steady = between(samples, 10.0, 40.0)
    assert mean(s.sent_bps for s in steady) > 0.9 * 0.6e6
    assert max(s.delay_s for s in steady) < 0.05 + 0.06, max(s.delay_s for s in steady)
    assert max(s.estimate_bps for s in steady) < 0.6e6


def test_a_capacity_that_rose_under_the_ceiling_is_found_by_its_probe() -> None:
    # Held at the ceiling the rate no longer grows into a capacity that
    # rose (RFC 8867 5.1's last step, 0.6 -> 1 Mbit/s): the gentle probe
    # shows the path carries more, and the rate grows again.
    sim = AdaptSim(
        LinkConfig(delay_s=0.05, rate_bps=0.6e6, queue_delay_s=0.3),
        [ScheduleStep(20.0, {"rate_bps": 1e6})],
    )
    samples = sim.run(40.0)
    assert max(s.estimate_bps for s in between(samples, 10.0, 20.0)) < 0.6e6
    assert mean(s.sent_bps for s in between(samples, 30.0, 40.0)) > 0.85 * 1e6


def _at_the_ceiling() -> tuple[BandwidthEstimator, ProbeCluster, int, float]:
    """An estimator held at the ceiling of a 0.6 Mbit/s capacity, and the
    ceiling probe it asks for: (estimator, cluster, next seq, now)."""
    estimator = BandwidthEstimator(start_bps=1e6, max_bps=4e6)
    estimator.set_rtt(0.1)
    estimator.start(0.0)  # the start's clusters, not sent: they time out
    rate = estimator.rate
    now = 0.0
    rate.update(Usage.OVERUSE, 0.6e6, now)  # a capacity: 0.6 Mbit/s
    seq = 0
    while not rate.at_ceiling:  # 0.57 Mbit/s of 1,000-byte packets, no queue
        _report(estimator, [(now + i * 0.014, None) for i in range(4)], seq, 0.05)
        seq, now = seq + 4, now + 0.056
    assert estimator.target_bps == pytest.approx(0.95 * 0.6e6, rel=0.01)
    clusters = []
    while not clusters:
        _report(estimator, [(now + i * 0.014, None) for i in range(4)], seq, 0.05)
        seq, now = seq + 4, now + 0.056
        clusters = estimator.poll(now)
    (cluster,) = clusters
    assert cluster.rate_bps == pytest.approx(1.25 * estimator.target_bps)
    return estimator, cluster, seq, now


def _probe_back(
    estimator: BandwidthEstimator,
    cluster: ProbeCluster,
    seq: int,
    now: float,
    received_bps: float | None = None,
) -> list:
    """Send ``cluster`` at its rate from ``now``, received at ``received_bps``
    (as sent: None); further clusters asked for."""
    gap = 8000 / cluster.rate_bps
    sends = [(now + i * gap, cluster.cluster_id) for i in range(cluster.packets)]
    growth = 0.0 if received_bps is None else cluster.rate_bps / received_bps - 1
    return _report(estimator, sends, seq, 0.05, growth)


def test_a_ceiling_probe_that_finds_only_the_capacity_asks_for_nothing_more() -> None:
    # An ordinary probe whose result reaches 70% of its rate is followed by
    # one at twice the result: at the ceiling of a full path that would be
    # a probe at twice the capacity, all of it queue.
    estimator, cluster, seq, now = _at_the_ceiling()
    further = _probe_back(estimator, cluster, seq, now, 0.6e6)  # the capacity
    assert ("probe_result", 600_000) in [
        (what, round(bps, -4)) for _, what, bps in estimator.events
    ]
    assert further == []
    assert estimator.target_bps == pytest.approx(0.95 * 0.6e6, rel=0.01)


def test_a_ceiling_probe_the_path_carries_forgets_the_capacity() -> None:
    estimator, cluster, seq, now = _at_the_ceiling()
    further = _probe_back(estimator, cluster, seq, now)  # received as sent
    assert not estimator.rate.capacity_known
    assert estimator.target_bps == pytest.approx(0.9 * cluster.rate_bps, rel=0.05)
    (next_cluster,) = further
    assert next_cluster.rate_bps == pytest.approx(2 * cluster.rate_bps, rel=0.05)


def _queue_after(estimator: BandwidthEstimator, seq: int, now: float) -> None:
    """0.3 s of media after a probe, each feedback's packets later than the
    last's (a growing queue: the detector says overuse)."""
    for _ in range(6):
        now += 0.05
        sends = [(now + i * 0.014, None) for i in range(4)]
        _report(estimator, sends, seq, 0.05, 0.5)
        seq += 4


def test_the_queue_behind_a_ceiling_probe_holds_the_rate() -> None:
    estimator, cluster, seq, now = _at_the_ceiling()
    _probe_back(estimator, cluster, seq, now, 0.6e6)
    _queue_after(estimator, seq + cluster.packets, now + 0.02)
    assert estimator.cuts["overuse"] == 0
    assert estimator.target_bps == pytest.approx(0.95 * 0.6e6, rel=0.01)


def test_a_ceiling_probe_that_finds_the_path_dropped_lets_overuse_cut() -> None:
    # The 5 s period met RFC 8867's drop from 2.5 to 0.6 Mbit/s: the probe
    # came back at a quarter of the estimate, and holding through its
    # shadow put the first cut 0.4 s late.
    estimator, cluster, seq, now = _at_the_ceiling()
    _probe_back(estimator, cluster, seq, now, 0.15e6)
    _queue_after(estimator, seq + cluster.packets, now + 0.02)
    assert estimator.cuts["overuse"] >= 1
    assert estimator.target_bps < 0.9 * 0.95 * 0.6e6
