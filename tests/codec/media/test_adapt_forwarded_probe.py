"""The SFU probes a subscriber path that limits publishers, pure: a forwarder
that sends what a publisher offers (no more than the path's limit) and the
probe clusters the path asks for, at their rate, through a netsim
bottleneck, feedback back after 25 ms, on a virtual clock."""

from __future__ import annotations

from codec.media.adapt import ForwardedPath
from codec.media.adapt.estimator import CEILING_PROBE
from codec.media.adapt.probe import PERIODIC_PROBE_S
from netsim import Link, LinkConfig

from .forwarded_sim import ForwardedHop

TICK_S = 0.002
FPS = 30
WEIGH_S = 0.5
"""How often the SFU weighs a publisher's track against the path (and asks
the path for probes)."""


def _forward(
    link_config: LinkConfig, offered: list[tuple[float, float]], seconds: float
) -> tuple[list[tuple[float, float | None, float]], ForwardedPath]:
    """(time, limit, highest one-way delay of the last 0.5 s) every 0.5 s; the
    publisher offers ``offered`` ((from second, bits per second) steps), no
    more than the limit."""
    link: Link[bytes] = Link(link_config, seed=5)
    path = ForwardedPath()
    path.estimator.set_rtt(0.05)
    hop = ForwardedHop(link, path)
    samples = []
    now = next_frame = next_weigh = 0.0
    next_sample = 0.5
    while now < seconds:
        if now >= next_weigh:
            next_weigh += WEIGH_S
            if path.limit_bps(now) is not None:
                hop.add_probes(path.probes(now), now)
        if now >= next_frame:
            next_frame += 1 / FPS
            rate = next(bps for at, bps in reversed(offered) if now >= at)
            limit = path.limit_bps(now)
            hop.send_frame(rate if limit is None else min(rate, limit), FPS, now)
        for report in hop.step(now):
            hop.add_probes(path.on_feedback(report, now), now)  # type: ignore[arg-type]
        if now >= next_sample:
            next_sample += 0.5
            samples.append((now, path.limit_bps(now), hop.worst))
            hop.worst = 0.0
        now += TICK_S
    return samples, path


def test_a_path_that_carries_more_opens_when_the_publisher_recovers():
    # The publisher sends 500 kbit/s for 10 s (held back by its own path),
    # then 3 Mbit/s. Without probes the limit grows only with what arrives:
    # 0.87 Mbit/s when the publisher can send more, 1.1 Mbit/s 3.5 s later;
    # with them, a clean 10 Mbit/s path limits nobody.
    link = LinkConfig(delay_s=0.01, rate_bps=10e6, queue_delay_s=0.3)
    samples, path = _forward(link, [(0, 500e3), (10, 3e6)], 12.0)
    assert path.estimator.probes.clusters_sent >= 1
    late = [limit for t, limit, _ in samples if t >= 11.0]
    assert all(limit is None or limit >= 2.5e6 for limit in late), samples


def test_probing_a_slow_path_keeps_its_limit_under_it_and_its_queue_short():
    link = LinkConfig(delay_s=0.025, rate_bps=1e6, queue_delay_s=0.3)
    samples, path = _forward(link, [(0, 3e6)], 20.0)
    # Filled by its publisher, the path is probed at the start, then only
    # gently: at its estimate's ceiling, a short cluster at 1.25 times the
    # estimate every 5 s at most, to see whether its capacity rose
    # (test_simulcast_probe's rising path). Neither the limit nor the queue
    # below moves for them (the same figures as with no further probe).
    probes = [(at, bps) for at, kind, bps in path.estimator.events if kind == "probe"]
    assert probes[0][0] < 1.0 and len(probes) <= 1 + 20 / PERIODIC_PROBE_S
    gaps = [b[0] - a[0] for a, b in zip(probes[1:], probes[2:], strict=False)]
    assert all(gap >= PERIODIC_PROBE_S - TICK_S for gap in gaps), probes
    assert all(bps <= CEILING_PROBE * 1e6 for _, bps in probes[1:]), probes
    steady = [(limit, worst) for t, limit, worst in samples if t >= 5.0]
    limits = [limit for limit, _ in steady]
    assert all(limit is not None and limit < 1.1e6 for limit in limits), samples
    assert sum(limits) / len(limits) < 0.95e6  # type: ignore[arg-type]
    assert max(worst for _, worst in steady) < 0.2, samples
