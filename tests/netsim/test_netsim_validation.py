"""Measured properties of the link model match the configured ones (issue item 5).

Each test pushes 100,000 packets through a seeded link on the virtual clock and
compares what comes out with what was asked for: loss rate within 10% (relative),
Gilbert-Elliott burst length 1/r, delay percentiles, rate within 2%, reordering and
duplication probabilities, and queue limits.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from netsim import GilbertElliott, Link, LinkConfig, Trace

PACKETS = 100_000


def run(
    config: LinkConfig,
    *,
    count: int = PACKETS,
    spacing_s: float = 0.001,
    sizes: list[int] | None = None,
    seed: int = 1,
    watch: object = None,
) -> tuple[list[tuple[float, int]], Link[bytes]]:
    """Send ``count`` numbered packets ``spacing_s`` apart; return the deliveries as
    (time, sequence) and the link. ``watch(link)`` runs after every send."""
    link: Link[bytes] = Link(config, seed=seed)
    delivered: list[tuple[float, int]] = []

    def collect(until: float | None) -> None:
        while (wakeup := link.next_wakeup()) is not None and (
            until is None or wakeup <= until
        ):
            for data in link.receive(wakeup):
                delivered.append((wakeup, int.from_bytes(data[:4], "big")))

    for sequence in range(count):
        now = sequence * spacing_s
        collect(now)
        size = sizes[sequence] if sizes is not None else 100
        link.send(sequence.to_bytes(4, "big") + bytes(size - 4), now)
        if watch is not None:
            watch(link)  # type: ignore[operator]
    collect(None)
    return delivered, link


def assert_close(measured: float, expected: float, relative: float) -> None:
    assert abs(measured - expected) <= relative * expected, (measured, expected)


@pytest.mark.parametrize(
    ("loss", "correlation"), [(0.02, 0.0), (0.10, 0.0), (0.02, 0.5)]
)
def test_bernoulli_loss_rate(loss: float, correlation: float) -> None:
    delivered, link = run(LinkConfig(loss=loss, loss_correlation=correlation))
    measured = 1 - len(delivered) / PACKETS
    assert_close(measured, loss, 0.10)
    assert link.stats.dropped_loss == PACKETS - len(delivered)


def loss_runs(delivered: list[tuple[float, int]]) -> list[int]:
    """Lengths of the runs of consecutive lost sequence numbers."""
    runs = []
    expected = 0
    for _, sequence in delivered:
        if sequence > expected:
            runs.append(sequence - expected)
        expected = sequence + 1
    if expected < PACKETS:
        runs.append(PACKETS - expected)
    return runs


def test_gilbert_burst_length_is_one_over_r() -> None:
    model = GilbertElliott(p=0.01, r=0.25)
    delivered, _ = run(LinkConfig(gilbert_elliott=model))
    assert_close(1 - len(delivered) / PACKETS, model.loss_rate, 0.10)
    runs = loss_runs(delivered)
    assert_close(statistics.fmean(runs), 1 / model.r, 0.10)


def test_gilbert_elliott_loss_rate_with_partial_loss_in_each_state() -> None:
    model = GilbertElliott(p=0.005, r=0.2, one_minus_h=0.7, one_minus_k=0.001)
    delivered, _ = run(LinkConfig(gilbert_elliott=model))
    assert_close(1 - len(delivered) / PACKETS, model.loss_rate, 0.10)


def pareto_quantile(q: float) -> float:
    return min(4.0, ((1 - q) ** (-1 / 3) - 1.5) * 4 / 3)


QUANTILES = {
    "uniform": lambda q: 2 * q - 1,
    "normal": lambda q: statistics.NormalDist().inv_cdf(q),
    "pareto": pareto_quantile,
}


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto"])
def test_delay_percentiles(distribution: str) -> None:
    delay_s, jitter_s = 0.040, 0.010
    config = LinkConfig(
        delay_s=delay_s,
        jitter_s=jitter_s,
        jitter_distribution=distribution,  # type: ignore[arg-type]
        keep_order=False,
    )
    delivered, _ = run(config)
    delays = sorted(time - sequence * 0.001 for time, sequence in delivered)
    for q in (0.05, 0.25, 0.50, 0.75, 0.95):
        expected = delay_s + jitter_s * QUANTILES[distribution](q)
        measured = delays[int(q * len(delays))]
        assert measured == pytest.approx(expected, abs=0.0005), q


def test_jitter_correlation_keeps_the_distribution() -> None:
    config = LinkConfig(
        delay_s=0.040,
        jitter_s=0.010,
        jitter_distribution="normal",
        jitter_correlation=0.9,
        keep_order=False,
    )
    delivered, _ = run(config)
    by_sequence = dict(
        (sequence, time - sequence * 0.001) for time, sequence in delivered
    )
    delays = [by_sequence[sequence] for sequence in range(PACKETS)]
    lag_1 = statistics.correlation(delays[:-1], delays[1:])
    assert lag_1 == pytest.approx(0.9, abs=0.02)
    ordered = sorted(delays)
    for q in (0.10, 0.50, 0.90):
        expected = 0.040 + 0.010 * statistics.NormalDist().inv_cdf(q)
        assert ordered[int(q * PACKETS)] == pytest.approx(expected, abs=0.001)


def measured_rate_bps(delivered: list[tuple[float, int]], size: int) -> float:
    """Throughput over the deliveries: bits after the first over the time span."""
    span = delivered[-1][0] - delivered[0][0]
    return (len(delivered) - 1) * size * 8 / span


def test_rate_within_two_percent() -> None:
    # 1000-byte packets offered at 1.6 Mbit/s to a 1.5 Mbit/s bottleneck.
    config = LinkConfig(rate_bps=1.5e6, delay_s=0.02, queue_packets=None)
    delivered, _ = run(config, count=20_000, spacing_s=0.005, sizes=[1000] * 20_000)
    assert_close(measured_rate_bps(delivered, 1000), 1.5e6, 0.02)


def test_trace_rate_within_two_percent() -> None:
    # Seven 1500-byte opportunities every 10 ms, in bursts: 8.4 Mbit/s on average.
    trace = Trace((1, 1, 1, 5, 7, 7, 10))
    config = LinkConfig(trace=trace, queue_packets=None)
    delivered, _ = run(config, count=PACKETS, spacing_s=0.001, sizes=[1500] * PACKETS)
    assert trace.mean_rate_bps == pytest.approx(8.4e6)
    assert_close(measured_rate_bps(delivered, 1500), 8.4e6, 0.02)


def test_reorder_probability() -> None:
    config = LinkConfig(delay_s=0.040, reorder=0.05)
    delivered, link = run(config)
    # A packet overtook if some packet sent before it had not arrived yet.
    arrived: set[int] = set()
    oldest_missing = 0
    overtakers = 0
    for _, sequence in delivered:
        if sequence > oldest_missing:
            overtakers += 1
        arrived.add(sequence)
        while oldest_missing in arrived:
            oldest_missing += 1
    assert overtakers == link.stats.reordered
    assert_close(overtakers / PACKETS, 0.05, 0.10)


def test_duplicate_probability() -> None:
    delivered, link = run(LinkConfig(duplicate=0.01))
    copies = len(delivered) - len({sequence for _, sequence in delivered})
    assert copies == link.stats.duplicated
    assert_close(copies / PACKETS, 0.01, 0.10)


@pytest.mark.parametrize(
    "limit",
    [
        {"queue_packets": 25},
        {"queue_packets": None, "queue_bytes": 30_000},
        {"queue_packets": None, "queue_delay_s": 0.2},
    ],
)
def test_queue_limit_honoured(limit: dict[str, object]) -> None:
    # Random sizes offered at twice the 1 Mbit/s capacity: the queue overflows.
    rng = random.Random(5)
    sizes = [rng.randint(100, 1500) for _ in range(PACKETS)]
    config = LinkConfig(rate_bps=1e6, **limit)  # type: ignore[arg-type]
    most = {"packets": 0, "bytes": 0}

    def watch(link: Link[bytes]) -> None:
        stats = link.stats
        most["packets"] = max(most["packets"], stats.queued_packets)
        most["bytes"] = max(most["bytes"], stats.queued_bytes)

    spacing_s = statistics.fmean(sizes) * 8 / 2e6
    delivered, link = run(config, spacing_s=spacing_s, sizes=sizes, watch=watch)
    stats = link.stats
    assert stats.dropped_queue > PACKETS // 4
    # The queue never runs dry, so the link carries its full rate.
    span = delivered[-1][0] - delivered[0][0]
    assert_close(stats.bytes_out * 8 / span, 1e6, 0.02)
    assert stats.max_queued_packets == most["packets"]
    if limit.get("queue_packets"):
        assert most["packets"] == 25
    if limit.get("queue_bytes"):
        assert 30_000 - 1500 < most["bytes"] <= 30_000
    if limit.get("queue_delay_s"):
        assert 0.19 < stats.queue_delay_max_s <= 0.2
    assert not math.isnan(stats.queue_delay_mean_s)
    assert len(delivered) == PACKETS - stats.dropped_queue
