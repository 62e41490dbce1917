"""A subscriber's simulcast layer follows what the SFU's probes find, pure:
a publisher that sends the layer chosen (a lower layer at most at its
ceiling, no more than the path's share), the SFU's estimate of the path
(:class:`ForwardedPath`) with the probes it asks for, a netsim bottleneck,
feedback back after 25 ms, and a :class:`LayerSelector` weighed every half
second, on a virtual clock."""

from __future__ import annotations

from collections import deque

from codec.media.adapt import ForwardedPath
from codec.media.simulcast import LayerSelector, spatial_layers
from netsim import Link, LinkConfig

from .forwarded_sim import ForwardedHop

TICK_S = 0.002
FPS = 30.0
WEIGH_S = 0.5
LAYERS = spatial_layers(640, 480)
CEILINGS = (LAYERS[0].max_bps(FPS), 1_500_000)
"""What the publisher encodes each layer at, at most (bits per second)."""


def _room(
    capacity: list[tuple[float, float]],
    seconds: float,
    *,
    start_bps: float = 1e6,
    tick_s: float = TICK_S,
) -> list[tuple[float, int]]:
    """(time, layer) at every weighing; the bottleneck's rate follows
    ``capacity`` ((from second, bits per second) steps)."""
    link: Link[bytes] = Link(
        LinkConfig(delay_s=0.025, rate_bps=capacity[0][1], queue_delay_s=0.3), seed=3
    )
    path = ForwardedPath(start_bps=start_bps)
    path.estimator.set_rtt(0.05)
    hop = ForwardedHop(link, path)
    selector = LayerSelector()
    chosen: list[tuple[float, int]] = []
    layer = 0
    now = next_frame = next_weigh = 0.0
    steps = deque(capacity[1:])

    def weigh() -> None:
        nonlocal layer
        share = path.limit_bps(now)
        layer = selector.choose(
            LAYERS,
            FPS,
            share,
            now,
            True,  # a share under the layer's need takes it down at once
            known=path.measured,
            probed_at=path.probed_at,
        )
        wanted = selector.probe_share(LAYERS, FPS, share)
        if wanted is not None:
            # One video track, no audio: the share is the whole limit.
            hop.add_probes(path.probe_for(wanted, now), now)
        chosen.append((now, layer))

    while now < seconds:
        if steps and now >= steps[0][0]:
            link.update(now, rate_bps=steps.popleft()[1])
        if now >= next_weigh:
            next_weigh += WEIGH_S
            hop.add_probes(path.probes(now), now)
            weigh()
        if now >= next_frame:
            next_frame += 1 / FPS
            limit = path.limit_bps(now)
            rate = CEILINGS[layer] if limit is None else min(CEILINGS[layer], limit)
            hop.send_frame(rate, FPS, now)
        for report in hop.step(now):
            probed_at = path.probed_at
            hop.add_probes(path.on_feedback(report, now), now)
            # As the SFU does: the first probe at the first feedback, and a
            # weighing as soon as a probe returns.
            if not path.estimator.probes.clusters_sent:
                hop.add_probes(path.probes(now), now)
            if path.probed_at != probed_at:
                weigh()
        now += tick_s
    return chosen


def test_a_probe_that_finds_room_takes_the_subscriber_up_without_a_timed_try():
    # 500 kbit/s for 20 s (room for 320x240, not for 640x480), then 3 Mbit/s.
    # Before, only a timed try took the layer up: on this clock it tried
    # 640x480 at 9 s on the slow path (a second there: a freeze in a real
    # meeting), doubled its wait, and went up at 26 s, 6 s after the path
    # had room. Now the probes for the next layer answer instead.
    chosen = _room([(0, 500e3), (20, 3e6)], 30.0)
    slow = [layer for t, layer in chosen if 3.0 <= t < 20.0]
    assert slow and max(slow) == 0, chosen  # no try on the slow path
    up = next((t for t, layer in chosen if t >= 20.0 and layer == 1), None)
    assert up is not None and up < 23.0, chosen
    assert all(layer == 1 for t, layer in chosen if t >= up), chosen


def test_a_new_subscriber_starts_low_and_a_fast_path_goes_up_at_once():
    chosen = _room([(0, 10e6)], 4.0)
    assert chosen[0][1] == 0, chosen  # nothing known of the path yet
    up = next(t for t, layer in chosen if layer == 1)
    assert up <= 0.3, chosen


def test_a_slow_new_subscriber_never_gets_the_top_layer():
    # Before, its estimate started at 1 Mbit/s and took it to 640x480 until
    # congestion cut it (a 300 kbit/s subscriber froze 1.24 s).
    chosen = _room([(0, 300e3)], 15.0)
    assert all(layer == 0 for _, layer in chosen), chosen


def test_a_start_probe_that_read_low_is_checked_again_within_a_second_or_two():
    # The path is slow for its first 0.6 s (as a busy moment at either end
    # reads), then fast: the first probe for the next layer follows a
    # second after the start probe, not 5 s (up at 2.6 s; before, 5.6 s).
    chosen = _room([(0, 400e3), (0.6, 10e6)], 8.0)
    up = next((t for t, layer in chosen if layer == 1), None)
    assert up is not None and up < 3.0, chosen


def test_a_slow_path_that_rises_takes_the_subscriber_up():
    # 300 kbit/s for 15 s, then 2.5 Mbit/s (netsim's capacity-rise). The
    # publisher fills the slow path's limit, so no periodic probe goes
    # (APP_LIMITED), the next layer's need is far above the probe-for rule's
    # reach, and AIMD holds at the ceiling of the capacity it knows: before,
    # the estimate stayed at 290 kbit/s and the subscriber on 320x240 for
    # good. Now a path held at that ceiling gets the client's gentle probe
    # every 5 s, which sees the rise. (A 1 ms tick: the cluster's five
    # packets go 4.4 ms apart, which a 2 ms grid would bunch into a receive
    # span that reads as the receiver's, so the probe measured nothing.)
    chosen = _room([(0, 300e3), (15, 2.5e6)], 30.0, tick_s=0.001)
    assert all(layer == 0 for t, layer in chosen if 3.0 <= t < 15.0), chosen
    up = next((t for t, layer in chosen if t >= 15.0 and layer == 1), None)
    assert up is not None and up < 15.0 + 5.0 + 1.0, chosen
    assert all(layer == 1 for t, layer in chosen if t >= up), chosen
