"""The congestion controller's estimators: windowed filters, delivery-rate samples."""

from __future__ import annotations

import random

import pytest

from codec.media.cc import (
    AckAggregation,
    DeliverySampler,
    RttNoise,
    WindowedFilter,
    windowed_max,
    windowed_min,
)


def test_windowed_max_keeps_the_best_sample_of_the_window() -> None:
    best = windowed_max(8, 8)
    assert best.value is None
    for round_number, sample in enumerate([5.0, 9.0, 4.0, 3.0]):
        best.update(sample, round_number)
    assert best.value == 9.0
    # Round 1's 9.0 leaves once round 9 starts; 4.0 (round 2) is then the best.
    for round_number in range(4, 9):
        best.update(1.0, round_number)
    assert best.value == 9.0
    best.update(1.0, 9)
    assert best.value == 4.0


def test_windowed_min_expires_by_time_and_resets() -> None:
    lowest = windowed_min(10.0, 10)
    lowest.update(0.040, 0.0)
    lowest.update(0.060, 5.0)
    assert lowest.value == 0.040
    lowest.update(0.070, 10.5)
    assert lowest.value == 0.060
    lowest.reset(0.100, 11.0)
    assert lowest.value == 0.100
    lowest.clear()
    assert lowest.value is None


def test_windowed_filter_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError, match="positive"):
        WindowedFilter(0, 4, max)
    with pytest.raises(ValueError, match="positive"):
        WindowedFilter(1.0, 0, min)


@pytest.mark.parametrize("pick", [max, min])
def test_max_and_min_filters_pick_as_the_general_filter_does(pick) -> None:
    # windowed_max and windowed_min compare in place within a bucket; a filter
    # given any other function calls it. Both must keep the same samples:
    # ties, repeats, samples landing many to a bucket and buckets skipped.
    rng = random.Random(7)
    fast = WindowedFilter(8, 8, pick)
    general = WindowedFilter(8, 8, lambda a, b: pick(a, b))
    time = 0.0
    for _ in range(5000):
        time += rng.choice([0.0, 0.0, 0.0, 0.1, 0.7, 3.0])
        sample = rng.choice([1.0, 2.0, 2.0, 3.0, rng.random() * 4])
        fast.update(sample, time)
        general.update(sample, time)
        assert fast.value == general.value
        assert fast._slots == general._slots


def test_delivery_rate_of_a_paced_flow_is_its_rate_and_rounds_are_counted() -> None:
    sampler = DeliverySampler()
    size, spacing, rtt = 1000, 0.001, 0.050  # 1 MB/s, a packet per millisecond
    rates = []
    in_flight = 0
    sends = {}
    for number in range(400):
        now = number * spacing
        # Acknowledge everything sent one RTT ago before sending.
        for key in [k for k, sent in sends.items() if sent + rtt <= now]:
            sample = sampler.on_acked(key, size, sends.pop(key), now)
            in_flight -= size
            if sample is not None:
                rates.append(sample.rate_bytes_per_s)
        sampler.on_sent(number, now, in_flight)
        sends[number] = now
        in_flight += size
    steady = rates[100:]
    assert all(abs(rate - 1e6) < 0.05e6 for rate in steady)
    # 350 ms of ACKs at 50 ms per round: about seven rounds.
    assert 6 <= sampler.round_count <= 8


def test_app_limited_marks_packets_until_what_was_in_flight_is_delivered() -> None:
    sampler = DeliverySampler()
    sampler.on_sent("a", 0.0, 0)
    sampler.mark_app_limited(2000)
    sampler.on_sent("b", 0.001, 1000)
    first = sampler.on_acked("a", 1000, 0.0, 0.050)
    second = sampler.on_acked("b", 1000, 0.001, 0.051)
    assert first is not None and not first.app_limited
    assert second is not None and second.app_limited
    # Both delivered: the next packet measures the path again.
    sampler.on_sent("c", 0.052, 0)
    third = sampler.on_acked("c", 1000, 0.052, 0.102)
    assert third is not None and not third.app_limited


def test_the_controllers_tuple_is_the_rate_sample() -> None:
    one, two = DeliverySampler(), DeliverySampler()
    for sampler in (one, two):
        sampler.on_sent("a", 0.0, 0)
        sampler.on_sent("b", 0.010, 1000)
        sampler.mark_app_limited(500)
        sampler.on_sent("c", 0.020, 2000)
    acks = (("a", 0.0, 0.05), ("b", 0.010, 0.06), ("c", 0.020, 0.07))
    for key, sent_time, now in acks:
        sample = one.on_acked(key, 1000, sent_time, now)
        assert sample is not None
        assert two.acked(key, 1000, sent_time, now) == (
            sample.rate_bytes_per_s,
            sample.interval_s,
            sample.app_limited,
        )
        assert one.round_count == two.round_count
    assert sample.app_limited


def test_unknown_or_removed_packets_give_no_sample() -> None:
    sampler = DeliverySampler()
    sampler.on_sent(1, 0.0, 0)
    sampler.on_removed(1)
    assert sampler.on_acked(1, 1000, 0.0, 0.05) is None
    assert sampler.on_acked(2, 1000, 0.0, 0.05) is None
    assert sampler.delivered == 0


def test_acks_at_the_bandwidth_leave_no_excess_and_a_clump_does() -> None:
    aggregation = AckAggregation(window_rounds=8)
    bandwidth = 1e6  # bytes per second: a 1000-byte packet per millisecond
    for number in range(100):
        aggregation.on_acked(1000, number * 0.001, bandwidth, 0, 10**6)
    assert aggregation.extra_bytes <= 1000
    # After 2 ms of silence (deliveries fell behind the rate: a new epoch), ten
    # packets acknowledged at one instant: all 10 kB beyond the rate.
    for _ in range(10):
        aggregation.on_acked(1000, 0.101, bandwidth, 1, 10**6)
    assert aggregation.extra_bytes == 10_000
    # The excess counts at most the cap, and nothing without a bandwidth.
    capped = AckAggregation(window_rounds=8)
    for _ in range(50):
        capped.on_acked(1000, 1.0, bandwidth, 0, 5000)
        capped.on_acked(1000, 1.0, None, 0, 5000)
    assert capped.extra_bytes == 5000


def test_rtt_noise_measures_jitter_and_spread_but_not_a_one_off_ramp() -> None:
    steady = RttNoise(jitter_gain=1 / 16, group_samples=16, window_groups=16)
    for _ in range(64):
        steady.on_rtt(0.050, cruising=True)
        steady.on_round_end()
    assert steady.jitter == 0 and steady.spread == pytest.approx(0, abs=1e-12)

    jittery = RttNoise(jitter_gain=1 / 16, group_samples=16, window_groups=16)
    for number in range(64):
        jittery.on_rtt(0.040 if number % 2 else 0.060, cruising=True)
        jittery.on_round_end()
    assert jittery.spread == pytest.approx(0.010)
    assert jittery.jitter == pytest.approx(0.020, rel=0.1)
    # A queue building once (one group ramping to 200 ms) leaves the spread alone.
    for number in range(16):
        jittery.on_rtt(0.040 + number * 0.010, cruising=True)
    jittery.on_round_end()
    assert jittery.spread == pytest.approx(0.010)


def test_rtt_noise_ignores_samples_taken_while_not_cruising() -> None:
    noise = RttNoise(jitter_gain=1 / 16, group_samples=4, window_groups=4)
    for number in range(40):
        noise.on_rtt(0.040 if number % 2 else 0.080, cruising=False)
        noise.on_round_end()
    assert noise.spread == 0
    assert noise.jitter > 0
