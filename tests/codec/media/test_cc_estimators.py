"""The congestion controller's estimators: windowed filters, delivery-rate samples."""

from __future__ import annotations

import pytest

from codec.media.cc import DeliverySampler, WindowedFilter, windowed_max, windowed_min


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


def test_unknown_or_removed_packets_give_no_sample() -> None:
    sampler = DeliverySampler()
    sampler.on_sent(1, 0.0, 0)
    sampler.on_removed(1)
    assert sampler.on_acked(1, 1000, 0.0, 0.05) is None
    assert sampler.on_acked(2, 1000, 0.0, 0.05) is None
    assert sampler.delivered == 0
