"""Simulcast at the SFU on fake connections and a hand-driven clock: each
subscriber gets the layer its path fits, renumbered into one stream, and the
publisher is told which layers to encode."""

from __future__ import annotations

from codec.media import FeedbackPacket, KeyframeRequest, VideoPacket, parse_packet
from server.sfu import Forwarder
from server.sfu_layers import SubscriberLayer, SubscriberPath, layered, weigh_layers

from .test_rooms_forwarding import Clock, FakeConn

SIZES = {7: (640, 480, 30.0)}
"""Track 7 is announced at 640x480: layers 0 (320x240) and 1 (640x480)."""


def video(
    seq: int, frame: int, layer: int, size: int, *, keyframe: bool = False
) -> bytes:
    return VideoPacket(
        track_id=7,
        seq=seq,
        transport_seq=0,
        timestamp=frame * 3000,
        frame_number=frame,
        fragment_index=0,
        fragment_count=1,
        keyframe=keyframe,
        layer=layer << 4,
        payload=b"x" * size,
    ).serialize()


def room() -> tuple[Forwarder, Clock, FakeConn, FakeConn, FakeConn]:
    clock = Clock()
    sfu = Forwarder(clock, max_queued=10_000, max_queue_delay=10.0)
    a, b, c = FakeConn(), FakeConn(), FakeConn()
    sfu.set_room("room", [(a, [7]), (b, []), (c, [])], SIZES)
    return sfu, clock, a, b, c


def test_a_cut_subscriber_gets_the_low_layer_and_the_other_keeps_the_top():
    sfu, clock, a, b, c = room()
    to_b, to_c = [], []
    feedback_seq = 0
    for i in range(300):
        clock.now = 100 + i * 0.01
        keyframe = i % 50 == 0
        # Frame i of each layer, numbered on its own (here alike).
        sfu.on_datagram(a, video(i, i, 0, 400, keyframe=keyframe))
        sfu.on_datagram(a, video(i, i, 1, 1100, keyframe=keyframe))
        to_b += [parse_packet(d) for d in b.take()]
        got = [parse_packet(d) for d in c.take()]
        to_c += got
        if got and i % 5 == 4:
            # c's path delivers one packet per 20 ms: a queue grows.
            seqs = [p.transport_seq for p in got]
            arrivals = [0.02 * s for s in seqs]
            report = FeedbackPacket.from_arrival_times(feedback_seq, seqs[0], arrivals)
            feedback_seq = (feedback_seq + 1) & 0xFF
            sfu.on_datagram(c, report.serialize())
    a.take()
    # b's path limits nothing it cannot carry: the top layer, untouched.
    assert {p.layer for p in to_b} == {0x10}
    assert [p.seq for p in to_b] == list(range(300))
    # c started on the top layer and went down to the low one at one of its
    # keyframes, and sees one stream: sequence and frame numbers unbroken.
    layers = [p.layer for p in to_c]
    assert layers[0] == 0x10 and layers[-1] == 0x00
    switch = layers.index(0x00)
    assert set(layers[switch:]) == {0x00} and to_c[switch].keyframe
    assert [p.seq for p in to_c] == list(range(len(to_c)))
    assert [p.frame_number for p in to_c] == list(range(len(to_c)))
    assert sfu.snapshot()["sfu_layer_switches"] == 1
    # The publisher is told per layer what its subscribers take; no limit
    # for the whole track from the slow one.
    assert all(limit.layer is not None for limit in a.limits)
    last = {limit.layer: limit.max_bps for limit in a.limits}
    assert 0 < last[0] < 460_000 < last[1]
    assert sfu.stats.layer_limits_sent == len(a.limits)
    # A keyframe request from c asks for the layer c gets.
    sfu.on_datagram(c, KeyframeRequest(7, 0x10).serialize())
    requests = [parse_packet(d) for d in a.take()]
    assert KeyframeRequest(7, 0x00) in requests


def test_a_layer_nobody_gets_is_not_asked_for():
    sfu, clock, a, b, c = room()
    for i in range(60):
        clock.now = 100 + i * 0.01
        sfu.on_datagram(a, video(i, i, 1, 500, keyframe=i == 0))
    a.take()
    assert a.limits
    last = {limit.layer: limit.max_bps for limit in a.limits}
    assert last[0] == 0 and last[1] > 0
    assert all(p.layer == 0x10 for p in map(parse_packet, b.take()))


def test_unknown_layers_are_dropped_and_counted():
    sfu, clock, a, b, c = room()
    sfu.set_room("room", [(a, [7, 8]), (b, []), (c, [])], SIZES)
    sfu.on_datagram(a, video(0, 0, 2, 100, keyframe=True))  # 7 has layers 0, 1
    single = bytearray(video(0, 0, 0, 100, keyframe=True))
    single[4:8] = (8).to_bytes(4, "big")
    single[1] = 0x10  # 8 is one layer: only 0
    sfu.on_datagram(a, bytes(single))
    assert sfu.stats.dropped_unknown_layer == 2
    assert b.take() == [] and c.take() == []
    # A member sending a (layer) rate limit is malformed: only the SFU does.
    sfu.on_datagram(b, bytes([0x70, 0x81, 0, 0, 0, 7, 0, 0, 1, 0]))
    assert sfu.stats.dropped_malformed == 1


def test_a_small_view_gets_the_small_layer_and_the_top_is_no_longer_asked():
    sfu, clock, a, b, c = room()
    sfu.set_view(c, 7, 320, 240)
    to_b, to_c = [], []
    for i in range(100):
        clock.now = 100 + i * 0.01
        keyframe = i % 50 == 0
        sfu.on_datagram(a, video(i, i, 0, 400, keyframe=keyframe))
        sfu.on_datagram(a, video(i, i, 1, 1100, keyframe=keyframe))
        to_b += [parse_packet(d) for d in b.take()]
        to_c += [parse_packet(d) for d in c.take()]
    # Neither path limits anything: b gets the top layer, c the one its
    # 320x240 view needs, both encoded.
    assert {p.layer for p in to_b} == {0x10}
    assert {p.layer for p in to_c} == {0x00} and to_c[0].keyframe
    a.take()
    last = {limit.layer: limit.max_bps for limit in a.limits}
    assert last[0] > 0 and last[1] > 0
    # b's view shrinks too (weighed again at the next datagram): nobody
    # gets the top layer, and it is no longer asked for.
    sfu.set_view(b, 7, 200, 150)
    a.limits.clear()
    for i in range(100, 200):
        clock.now = 100 + i * 0.01
        keyframe = i % 50 == 0
        sfu.on_datagram(a, video(i, i, 0, 400, keyframe=keyframe))
        sfu.on_datagram(a, video(i, i, 1, 1100, keyframe=keyframe))
    a.take()
    last = {limit.layer: limit.max_bps for limit in a.limits}
    assert last[0] > 0 and last[1] == 0
    assert {parse_packet(d).layer for d in b.take()} == {0x00}
    # 0 x 0: no limit again; b goes up by the usual rule (after the hold).
    sfu.set_view(b, 7, 0, 0)
    a.limits.clear()
    for i in range(200, 500):
        clock.now = 100 + i * 0.01
        sfu.on_datagram(a, video(i, i, 0, 400, keyframe=i % 50 == 0))
        sfu.on_datagram(a, video(i, i, 1, 1100, keyframe=i % 50 == 0))
    a.take()
    last = {limit.layer: limit.max_bps for limit in a.limits}
    assert last[1] > 0
    assert parse_packet(b.take()[-1]).layer == 0x10


def test_until_its_path_is_measured_a_new_subscriber_starts_low():
    published = layered(640, 480, 30.0)
    assert published is not None
    first, second = SubscriberLayer(1), SubscriberLayer(1)
    # The first was the only subscriber until now: it gets the top layer.
    assert first.forward(video(0, 0, 1, 100, keyframe=True), 1, True, True)
    asked: list[int] = []
    guess = SubscriberPath(800_000, known=False)
    limits = weigh_layers(
        7, published, [first, second], [guess, guess], 0.0, asked.append
    )
    # The first keeps its layer until its path is measured; the second, new,
    # starts on the lowest, which is asked at its default rate, not at the
    # start guess's share.
    assert (first.layer, second.layer) == (1, 0) and asked == [0]
    rates = {parse_packet(d).layer: parse_packet(d).max_bps for d in limits}
    assert rates[0] == published.layers[0].max_bps(30.0) // 3
    assert second.forward(video(1, 1, 0, 100, keyframe=True), 0, True, True)
    # Measured: the second goes straight up when its share covers the top
    # layer with the margin; the first stays.
    known = SubscriberPath(800_000)
    limits = weigh_layers(
        7, published, [first, second], [known, known], 0.2, asked.append
    )
    assert (first.target, second.target) == (1, 1)
    # Layer 0 is still asked for until the second gets the top's keyframe:
    # it is what the second is shown meanwhile.
    assert second.current == 0
    rates = {parse_packet(d).layer: parse_packet(d).max_bps for d in limits}
    assert rates[0] > 0


class _Timer:
    def cancel(self) -> None:
        pass


def test_a_new_subscriber_is_not_sent_the_top_layer_before_its_path_is_known():
    clock = Clock()
    sfu = Forwarder(
        clock,
        max_queued=10_000,
        max_queue_delay=10.0,
        call_later=lambda delay, callback: _Timer(),  # probes: paths are measured
    )
    a, b, c = FakeConn(), FakeConn(), FakeConn()
    sfu.set_room("room", [(a, [7]), (b, []), (c, [])], SIZES)
    # c's receiver asks for a keyframe as it starts: of the lowest layer.
    sfu.on_datagram(c, KeyframeRequest(7, 0).serialize())
    assert [parse_packet(d) for d in a.take()] == [KeyframeRequest(7, 0x00)]
    for i in range(40):
        clock.now = 100 + i * 0.01
        # Both layers' keyframes, the top one first (as a publisher sends).
        sfu.on_datagram(a, video(i, i, 1, 1100, keyframe=i == 0))
        sfu.on_datagram(a, video(i, i, 0, 400, keyframe=i == 0))
    # Nothing is known of either path: both get the lowest layer.
    assert {parse_packet(d).layer for d in c.take()} == {0x00}
    assert {parse_packet(d).layer for d in b.take()} == {0x00}
