"""Simulcast's pure parts: the layers of a source, the layer choice on a
virtual clock, and the layer fields of the rate limit and NACK datagrams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.errors import LocalProtocolError
from codec.media import NackPacket, PacketError, RateLimit, parse_packet
from codec.media.simulcast import (
    MAX_PROBE_HOLD_S,
    PROBE_HOLD_S,
    UP_MARGIN,
    LayerSelector,
    SpatialLayer,
    layer_for_view,
    spatial_layers,
)

HD = spatial_layers(1280, 720)
FPS = 30.0
NEEDS = [layer.min_bps(FPS) for layer in HD]


def test_the_layers_that_fit_the_source():
    assert spatial_layers(1280, 720) == (
        SpatialLayer(0, 320, 180),
        SpatialLayer(1, 640, 360),
        SpatialLayer(2, 1280, 720),
    )
    assert spatial_layers(640, 480) == (
        SpatialLayer(0, 320, 240),
        SpatialLayer(1, 640, 480),
    )
    # A small source is one layer, id 0, as before simulcast.
    assert spatial_layers(320, 240) == (SpatialLayer(0, 320, 240),)
    assert spatial_layers(640, 352) == (SpatialLayer(0, 640, 352),)


def test_an_unlimited_path_gets_the_top_layer():
    selector = LayerSelector()
    assert selector.choose(HD, FPS, None, 0.0) == 2


def test_down_at_once_up_with_a_margin_after_a_hold():
    selector = LayerSelector()
    now = 0.0
    assert selector.choose(HD, FPS, 3_000_000, now) == 2
    # The share falls under the top layer's need: down at once, to the
    # layer that fits.
    now += 0.5
    assert selector.choose(HD, FPS, NEEDS[2] * 0.9, now) == 1
    # Back over the need but under the margin: no step up.
    for _ in range(10):
        now += 0.5
        assert selector.choose(HD, FPS, NEEDS[2] * 1.1, now) == 1
    # With the margin, up again (the hold has long passed).
    now += 0.5
    assert selector.choose(HD, FPS, NEEDS[2] * 1.4, now) == 2
    # Even the lowest layer does not fit: the lowest (the SFU then drops
    # whole frames of it).
    now += 0.5
    assert selector.choose(HD, FPS, 10_000, now) == 0


def test_no_flapping_around_a_need():
    # A share that swings around the top layer's need every half second,
    # the lower layer running at its own rate (below the share).
    selector = LayerSelector()
    chosen = []
    now = 0.0
    for i in range(200):
        now += 0.5
        share = NEEDS[2] * (0.95 if i % 2 == 0 else 1.05)
        chosen.append(selector.choose(HD, FPS, share, now))
    changes = sum(a != b for a, b in zip(chosen, chosen[1:], strict=False))
    # Down at the first swing; a few tries up in 100 s, each wait doubling,
    # never a change every half second.
    assert chosen[0] == 1
    assert changes <= 8


def test_a_path_limited_by_its_layer_tries_the_next_up_and_backs_off():
    selector = LayerSelector()
    now = 0.0
    share = NEEDS[1] * 0.9  # fits layer 0 only
    assert selector.choose(HD, FPS, share, now) == 0
    tries = []
    layer = 0
    while now < 200:
        now += 0.5
        # The path's estimate cannot show room for the next layer (it grows
        # only with what it carries); a try up cuts the share (congestion).
        cut = layer == 1
        layer_before = layer
        layer = selector.choose(HD, FPS, share * (0.5 if cut else 1.0), now)
        if layer > layer_before:
            tries.append(now)
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert tries[0] >= PROBE_HOLD_S
    # Each failed try doubles the wait, up to the cap.
    assert gaps == sorted(gaps) and max(gaps) <= MAX_PROBE_HOLD_S + 1.0
    assert len(tries) <= 6


def test_a_path_whose_probes_answer_is_not_tried_up_by_the_clock():
    # The same path, probed by the SFU every 5 s: the probes say whether
    # the next layer fits, so no timed try (and its freeze) is made...
    selector = LayerSelector()
    share = NEEDS[1] * 0.9
    now = 0.0
    assert selector.probe_share(HD, FPS, share) is None  # no choice yet
    assert selector.choose(HD, FPS, share, now, probed_at=now) == 0
    assert selector.probe_share(HD, FPS, share) == UP_MARGIN * NEEDS[1]
    while now < 60:
        now += 0.5
        probed_at = now - now % 5.0
        assert selector.choose(HD, FPS, share, now, probed_at=probed_at) == 0
    # ...and when one finds room, the share shows it: up by the margin rule.
    now += 0.5
    assert selector.choose(HD, FPS, 1.4 * NEEDS[1], now, probed_at=now) == 1
    # Probes that stopped answering leave the timed try to tell.
    selector = LayerSelector()
    assert selector.choose(HD, FPS, share, 0.0, probed_at=0.0) == 0
    assert selector.choose(HD, FPS, share, PROBE_HOLD_S, probed_at=0.0) == 1


def test_a_path_nothing_is_known_of_starts_on_the_lowest_layer():
    selector = LayerSelector()
    # The start guess would fit the top layer: not taken on trust.
    assert selector.choose(HD, FPS, 3 * NEEDS[2], 0.0, known=False) == 0
    assert selector.choose(HD, FPS, 3 * NEEDS[2], 0.3, known=False) == 0
    # Its first measure: straight to what it covers with the margin, no hold.
    assert selector.choose(HD, FPS, 1.2 * NEEDS[2], 0.4, known=True) == 1
    selector = LayerSelector()
    assert selector.choose(HD, FPS, 3 * NEEDS[2], 0.0, known=False) == 0
    assert selector.choose(HD, FPS, None, 0.1, known=True) == 2
    # Unmeasured, the guess takes it nowhere; never measured (no feedback),
    # the guess is taken after as long as a timed try waits.
    selector = LayerSelector()
    for step in range(int(PROBE_HOLD_S / 0.5)):
        assert selector.choose(HD, FPS, 3 * NEEDS[2], step * 0.5, known=False) == 0
    assert selector.choose(HD, FPS, 3 * NEEDS[2], PROBE_HOLD_S, known=False) == 2
    # A slow path stays where it started.
    selector = LayerSelector()
    assert selector.choose(HD, FPS, 3 * NEEDS[2], 0.0, known=False) == 0
    assert selector.choose(HD, FPS, 0.5 * NEEDS[1], 0.2, known=True) == 0


def test_a_view_caps_the_layer():
    assert layer_for_view(HD, 320, 180) == 0
    assert layer_for_view(HD, 300, 100) == 0
    assert layer_for_view(HD, 321, 180) == 1  # the smallest at least as large
    assert layer_for_view(HD, 640, 400) == 2
    assert layer_for_view(HD, 4000, 4000) == 2  # none as large: the top
    assert layer_for_view(HD, 0, 0) == 2  # no limit
    selector = LayerSelector()
    assert selector.choose(HD, FPS, 3 * NEEDS[2], 0.0, max_layer=1) == 1
    selector = LayerSelector()
    assert selector.choose(HD, FPS, None, 0.0, max_layer=0) == 0
    assert selector.choose(HD, FPS, None, 10.0, max_layer=1) == 1
    # Shrunk below the layer forwarded: down at once, whatever the path.
    assert selector.choose(HD, FPS, None, 10.5, max_layer=0) == 0
    assert selector.probe_share(HD, FPS, 0.9 * NEEDS[1], max_layer=0) is None


def test_a_path_far_under_the_next_layers_need_is_not_tried_up():
    # A 300 kbit/s path under a 640x480 layer's 460 kbit/s: a try would
    # freeze it for the larger keyframe's second on the wire.
    selector = LayerSelector()
    share = 0.5 * NEEDS[1]
    now = 0.0
    for _ in range(200):
        now += 0.5
        assert selector.choose(HD, FPS, share, now) == 0


def test_rate_limit_for_a_layer_round_trips():
    for layer, bps in [(0, 0), (1, 250_000), (2, 0xFFFFFFFF)]:
        limit = RateLimit(0xCAFEF00D, bps, layer)
        data = limit.serialize()
        assert data[1] == 0x80 | layer
        assert parse_packet(data) == limit
    # The whole track, as before: byte 1 zero.
    assert RateLimit(7, 1000).serialize()[1] == 0
    assert parse_packet(RateLimit(7, 1000).serialize()) == RateLimit(7, 1000)
    with pytest.raises(LocalProtocolError):
        RateLimit(7, 1000, 3).serialize()


@pytest.mark.parametrize(
    "selector",
    [0x83, 0x8F, 0x90, 0xC0, 0xF1],
    ids=["layer 3", "layer 15", "reserved 0x10", "reserved 0x40", "both"],
)
def test_a_malformed_layer_rate_limit_is_refused(selector):
    data = bytearray(RateLimit(7, 1000, 0).serialize())
    data[1] = selector
    with pytest.raises(PacketError):
        parse_packet(bytes(data))


@given(st.integers(0, 255))
def test_any_rate_limit_byte_parses_or_is_refused_cleanly(selector):
    data = bytearray(RateLimit(7, 1000).serialize())
    data[1] = selector
    try:
        limit = parse_packet(bytes(data))
    except PacketError:
        assert selector & 0x80
        return
    assert isinstance(limit, RateLimit)
    assert limit.layer == (selector & 0x0F if selector & 0x80 else None)


def test_a_nack_names_its_layer_in_the_flags():
    nack = NackPacket.from_seqs(0xCAFEF00D, [1, 2, 40], layer=2)
    data = nack.serialize()
    assert data[0] == 0x68 | 2
    assert parse_packet(data) == nack
    with pytest.raises(LocalProtocolError):
        NackPacket(7, ((1, 0),), 8).serialize()


def test_a_cut_without_a_queue_takes_the_layer_down_only_when_deep():
    # A loaded machine's timing cuts the estimate of a fast path now and then;
    # its queue stays short, and the picture keeps its layer.
    selector = LayerSelector()
    assert selector.choose(HD, FPS, 3_000_000, 0.0) == 2
    assert selector.choose(HD, FPS, 0.8 * NEEDS[2], 0.5, congested=False) == 2
    assert selector.choose(HD, FPS, 0.8 * NEEDS[2], 1.0, congested=True) == 1
    selector = LayerSelector()
    assert selector.choose(HD, FPS, 3_000_000, 0.0) == 2
    assert selector.choose(HD, FPS, 0.4 * NEEDS[2], 0.5, congested=False) == 1
