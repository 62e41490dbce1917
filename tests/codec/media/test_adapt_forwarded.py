"""The SFU's estimate of a subscriber's path, pure: a forwarder that sends
what a publisher offers (no more than the path's limit, once there is one)
through a netsim bottleneck, feedback back after 25 ms, on a virtual clock."""

from __future__ import annotations

import pytest

from codec.media.adapt import (
    FORWARDED_START_BPS,
    LIMIT_SHARE,
    ForwardedPath,
)
from codec.media.adapt.estimator import LOSSY_SHARE
from netsim import Link, LinkConfig

from .forwarded_sim import ForwardedHop

TICK_S = 0.002
FPS = 30


def _forward(
    link_config: LinkConfig,
    offered_bps: float,
    seconds: float,
    lag_s: float = 0.0,
    ramp_s: float = 0.0,
    path: ForwardedPath | None = None,
) -> list[tuple[float, float | None, float]]:
    """(time, limit, highest one-way delay of the last 0.5 s) every 0.5 s,
    the offered rate following the limit as it was ``lag_s`` seconds before
    (0: at once, as a publisher's encoder does within a frame) and growing
    from a tenth of ``offered_bps`` to all of it over the first ``ramp_s``
    seconds (a publisher whose own estimate is still probing up)."""
    link: Link[bytes] = Link(link_config, seed=3)
    path = path or ForwardedPath()
    path.estimator.set_rtt(0.05)
    hop = ForwardedHop(link, path)
    samples = []
    limits: list[tuple[float, float | None]] = []
    now = next_frame = 0.0
    next_sample = 0.5
    while now < seconds:
        if now >= next_frame:
            next_frame += 1 / FPS
            limits.append((now, path.limit_bps(now)))
            while len(limits) > 1 and limits[1][0] <= now - lag_s:
                limits.pop(0)
            limit = limits[0][1]
            offered = offered_bps * min(1.0, 0.1 + 0.9 * now / ramp_s if ramp_s else 1)
            hop.send_frame(offered if limit is None else min(offered, limit), FPS, now)
        for report in hop.step(now):
            path.on_feedback(report, now)  # type: ignore[arg-type]
        if now >= next_sample:
            next_sample += 0.5
            samples.append((now, path.limit_bps(now), hop.worst))
            hop.worst = 0.0
        now = round(now + TICK_S, 6)
    return samples


def test_the_limit_follows_a_path_slower_than_the_publisher():
    # 2 Mbit/s offered into 1.5 Mbit/s, 25 ms each way, a 300 ms queue.
    link = LinkConfig(delay_s=0.025, rate_bps=1_500_000, queue_delay_s=0.3)
    samples = _forward(link, 2_000_000, 30.0)
    assert all(limit is not None for _, limit, _ in samples)
    # The limit grows with what the path carries, then AIMD's sawtooth about
    # the capacity.
    limits = [limit or 0.0 for time, limit, _ in samples if time > 10.0]
    assert all(0.5 * 1_500_000 < limit < 1.2 * 1_500_000 for limit in limits)
    assert 0.6 * 1_500_000 < sum(limits) / len(limits) < 1_500_000
    # Followed, the limit keeps the bottleneck's queue short.
    late = sorted(delay for time, _, delay in samples if time > 10.0)
    assert late[int(0.9 * len(late))] < 0.025 + 0.15


def test_a_lossy_path_is_given_a_share_of_its_estimate():
    # bench/loss.py's 5% scenario: random loss, which retransmission covers,
    # does not cut the estimate, but publishers get half of what they would.
    link = LinkConfig(delay_s=0.025, loss=0.05, rate_bps=1_500_000, queue_delay_s=0.3)
    path = ForwardedPath()
    samples = _forward(link, 2_000_000, 10.0, path=path)
    assert path.estimator.target_bps >= FORWARDED_START_BPS
    late = [limit for time, limit, _ in samples if time > 3.0]
    expected = LIMIT_SHARE * LOSSY_SHARE * path.estimator.target_bps
    assert late[-1] == pytest.approx(expected)
    assert all(limit is not None and limit < 600_000 for limit in late)


def test_an_unknown_path_is_offered_what_it_was_seen_to_carry():
    # bench/loss.py's 2% scenario at its start: the clean-side publisher's own
    # estimate probes up to 2 Mbit/s within a second and follows the SFU's
    # limit a second late. The path is limited from the start, so the
    # bottleneck's queue stays short then too; and no cut takes the limit to
    # what arrived while the publisher was starting (once 99 kbit/s, from
    # which AIMD needed the rest of the run).
    link = LinkConfig(delay_s=0.05, loss=0.02, rate_bps=1_500_000, queue_delay_s=0.3)
    samples = _forward(link, 2_000_000, 10.0, lag_s=1.0, ramp_s=1.0)
    assert all(limit is not None for _, limit, _ in samples)
    assert max(queued - 0.05 for _, _, queued in samples) < 0.15
    assert min(limit or 0.0 for _, limit, _ in samples) > 400_000


def test_a_slow_path_from_the_start_is_under_its_capacity_within_a_second():
    link = LinkConfig(delay_s=0.025, rate_bps=300_000, queue_delay_s=0.3)
    samples = _forward(link, 2_000_000, 4.0)
    assert all(
        limit is not None and limit < 300_000 for t, limit, _ in samples if t >= 1.0
    )


def test_a_fast_path_lets_the_limit_grow_past_what_is_offered():
    # No probes: the limit grows 8% a second with what the path carries, so
    # a clean path holds a 2 Mbit/s publisher back for about ten seconds.
    link = LinkConfig(delay_s=0.025, rate_bps=10_000_000)
    samples = _forward(link, 2_000_000, 20.0)
    late = [limit for time, limit, _ in samples if time >= 15.0]
    assert all(limit is None or limit > 2_000_000 for limit in late)


def test_a_publisher_that_follows_a_second_late_keeps_the_queue_short():
    # The real publisher follows a limit up to a second late: the SFU weighs
    # twice a second and the encoder is retargeted at most once a second on a
    # small change. What the path queues then must stay under the SFU's
    # 150 ms (past that it drops whole frames and asks for a keyframe).
    for loss, delay in ((0.02, 0.05), (0.05, 0.025)):
        link = LinkConfig(
            delay_s=delay, loss=loss, rate_bps=1_500_000, queue_delay_s=0.3
        )
        samples = _forward(link, 2_000_000, 30.0, lag_s=1.0)
        late = [queued - delay for time, _, queued in samples if time > 10.0]
        assert max(late) < 0.15, (loss, [round(q, 3) for q in late])
