"""The SFU's forwarding rules on fake connections and a hand-driven clock."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from codec.media import (
    AudioPacket,
    FeedbackPacket,
    KeyframeRequest,
    NackPacket,
    ProbePacket,
    RateLimit,
    VideoPacket,
    parse_packet,
)
from codec.media.cc import MediaCongestionControl
from codec.media.feedback import parse_feedback
from server.sfu import BASE_FORWARDED_DATAGRAM, MAX_FORWARDED_DATAGRAM, Forwarder


class FakeLoss:
    """aioquic's round-trip estimate, as the SFU reads it, and the
    connection's congestion controller (ours, pure)."""

    _rtt_initialized = True
    _rtt_smoothed = 0.05

    def __init__(self) -> None:
        self._cc = MediaCongestionControl(max_datagram_size=1200)


class FakeQuic:
    def __init__(self) -> None:
        self._datagrams_pending: deque[bytes] = deque()
        self._loss = FakeLoss()

    def send_datagram_frame(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self._datagrams_pending.append(data)


class FakeConn:
    def __init__(self) -> None:
        self.quic = FakeQuic()
        self.transmits = 0
        self.feedback: list[FeedbackPacket] = []
        """The SFU's per-hop feedback to this member, set apart by take()."""
        self.limits: list[RateLimit] = []
        """The SFU's rate limits to this member, set apart by take()."""
        self.max_media_datagram = BASE_FORWARDED_DATAGRAM

    def transmit_soon(self) -> None:
        self.transmits += 1

    def take(self) -> list[bytes]:
        sent = []
        for data in self.quic._datagrams_pending:
            if data[:1] == b"\x50":  # version 1, kind feedback
                self.feedback.append(parse_feedback(memoryview(data)))
            elif data[:1] == b"\x70":  # version 1, kind rate limit
                limit = parse_packet(data)
                assert isinstance(limit, RateLimit)
                self.limits.append(limit)
            else:
                sent.append(data)
        self.quic._datagrams_pending.clear()
        return sent


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def video(
    track_id: int,
    seq: int = 0,
    size: int = 100,
    *,
    keyframe: bool = False,
    frame: int | None = None,
    index: int = 0,
    count: int = 1,
) -> bytes:
    return VideoPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=0,
        timestamp=0,
        frame_number=seq if frame is None else frame,
        fragment_index=index,
        fragment_count=count,
        keyframe=keyframe,
        layer=0,
        payload=b"x" * size,
    ).serialize()


def audio(track_id: int, seq: int = 0) -> bytes:
    return AudioPacket(track_id, seq, 0, 0, 50, True, b"opus").serialize()


def room_of_three(max_queued: int = 128, keyframe_request_interval: float = 0.1):
    clock = Clock()
    sfu = Forwarder(
        clock,
        max_queued=max_queued,
        max_queue_delay=0.15,
        keyframe_request_interval=keyframe_request_interval,
    )
    a, b, c = FakeConn(), FakeConn(), FakeConn()
    sfu.set_room("room", [(a, [7]), (b, [8]), (c, [])])
    return sfu, clock, a, b, c


def test_forwards_to_the_others_with_their_own_transport_sequence():
    sfu, _, a, b, c = room_of_three()
    sfu.on_datagram(a, video(7, 1))
    sfu.on_datagram(a, video(7, 2))
    sfu.on_datagram(b, video(8, 1))
    assert a.take() == [video(8, 1)[:2] + b"\x00\x00" + video(8, 1)[4:]]
    to_c = c.take()
    assert [d[2:4] for d in to_c] == [b"\x00\x00", b"\x00\x01", b"\x00\x02"]
    assert [d[:2] + d[4:] for d in to_c] == [
        d[:2] + d[4:] for d in (video(7, 1), video(7, 2), video(8, 1))
    ]
    assert len(b.take()) == 2
    assert sfu.stats.forwarded == 6 and c.transmits == 3


def test_transport_sequence_wraps_at_16_bits():
    sfu, _, a, _, c = room_of_three(max_queued=10**6)
    for seq in range(65537):
        sfu.on_datagram(a, video(7, seq & 0xFFFF))
    sent = c.take()
    assert sent[65535][2:4] == b"\xff\xff" and sent[65536][2:4] == b"\x00\x00"


def test_drops_foreign_tracks_non_members_and_malformed_datagrams():
    sfu, _, a, b, c = room_of_three()
    stranger = FakeConn()
    sfu.on_datagram(stranger, video(7))
    sfu.on_datagram(b, video(7))
    sfu.on_datagram(c, video(99))
    for bad in (
        b"",
        b"\x48\x00\x00",
        bytes([0x08]) + video(7)[1:],  # version 0
        bytes([0x78]) + video(7)[1:],  # reserved kind 7
        video(7, size=1402) + b"x",  # over the 1,422-byte limit
        b"\x60\x00\x00\x00",  # a truncated keyframe request
    ):
        sfu.on_datagram(a, bad)
    assert len(video(7, size=1402)) == MAX_FORWARDED_DATAGRAM
    assert len(video(7, size=1150)) == BASE_FORWARDED_DATAGRAM
    sfu.on_datagram(a, video(7, size=1150))
    stats = sfu.stats
    assert stats.dropped_not_member == 1
    assert stats.dropped_foreign_track == 2
    assert stats.dropped_malformed == 6
    assert stats.forwarded == 2 and len(c.take()) == 1


def test_a_datagram_over_the_base_size_goes_only_where_it_fits():
    """A fragment sized to a 1,452-byte packet reaches the members whose
    connection confirmed such packets; one whose path fell back to 1,200
    bytes is spared it (it would block that member's datagram queue)."""
    sfu, _, a, b, c = room_of_three()
    b.max_media_datagram = 1452 - 30
    big = video(7, size=1402)
    sfu.on_datagram(a, big)
    assert [len(d) for d in b.take()] == [len(big)]
    assert c.take() == []
    assert sfu.stats.dropped_too_large == 1 and sfu.stats.forwarded == 1
    sfu.on_datagram(a, video(7, seq=1, size=1150))  # the base size goes to all
    assert len(b.take()) == len(c.take()) == 1


def test_feedback_and_probes_end_at_the_sfu():
    sfu, _, a, b, c = room_of_three()
    feedback = FeedbackPacket.from_arrival_times(0, 10, [0.0, None, 0.01]).serialize()
    sfu.on_datagram(a, feedback)
    sfu.on_datagram(a, ProbePacket(1, 5, 500).serialize())
    sfu.on_datagram(a, ProbePacket(1, 6, 0).serialize())
    assert sfu.stats.per_hop_received == 3
    assert b.take() == [] and c.take() == []


def test_a_full_subscriber_queue_drops_for_that_subscriber_only():
    sfu, _, a, b, c = room_of_three(max_queued=3)
    for seq in range(5):
        sfu.on_datagram(a, video(7, seq))
    assert len(b.take()) == 3 and len(c.take()) == 3
    assert sfu.stats.dropped_queue_full == 4
    # Frames up to the next keyframe are dropped, and the SFU asked for it once.
    assert a.take() == [KeyframeRequest(7, 0).serialize()]
    sfu.on_datagram(a, video(7, 5))
    assert b.take() == [] and sfu.stats.dropped_queue_full == 6
    c.quic._datagrams_pending.extend([b"queued"] * 3)
    sfu.on_datagram(a, video(7, 6, keyframe=True))
    assert len(b.take()) == 1 and c.take() == [b"queued"] * 3


def test_a_subscriber_queue_that_does_not_drain_gets_nothing_more():
    sfu, clock, a, b, c = room_of_three()
    sfu.on_datagram(a, video(7, 0))
    assert len(b.take()) == 1  # b drains at once; c's queue stays backed up
    clock.now += 0.1
    sfu.on_datagram(a, video(7, 1))
    clock.now += 0.1  # c has not been empty for 0.2 s, over the 0.15 s bound
    sfu.on_datagram(a, video(7, 2))
    assert len(b.take()) == 2 and len(c.take()) == 2
    assert sfu.stats.dropped_queue_full == 1
    clock.now += 1.0
    sfu.on_datagram(a, video(7, 3))  # drained, but waiting for a keyframe
    assert c.take() == [] and len(b.take()) == 1
    sfu.on_datagram(a, video(7, 4, keyframe=True))
    assert len(c.take()) == 1 and len(b.take()) == 1


def test_the_time_the_server_waited_for_a_cpu_is_not_the_paths():
    # A starved server's loop runs aioquic's pacing timers late, so what it
    # queued waits longer: that wait is the server's, and the frames it would
    # drop for it the path carries.
    clock, waited = Clock(), [5.0]
    sfu = Forwarder(clock, max_queue_delay=0.15, cpu_wait=lambda: waited[0])
    a, b = FakeConn(), FakeConn()
    sfu.set_room("room", [(a, [7]), (b, [])])
    sfu.on_datagram(a, video(7, 0))  # stays queued to b
    clock.now += 0.2
    waited[0] += 0.17  # 170 ms of the 200 ms the loop waited for a CPU
    sfu.on_datagram(a, video(7, 1))
    assert len(b.take()) == 2 and sfu.stats.frames_dropped == 0
    sfu.on_datagram(a, video(7, 2))
    clock.now += 0.2  # the same wait, all of it the path's
    sfu.on_datagram(a, video(7, 3))
    assert len(b.take()) == 1 and sfu.stats.frames_dropped == 1


def test_keyframe_requests_are_coalesced_per_track():
    sfu, clock, a, b, c = room_of_three()
    request = KeyframeRequest(7, 0).serialize()
    sfu.on_datagram(b, request)
    sfu.on_datagram(c, request)
    clock.now += 0.05
    sfu.on_datagram(c, request)
    assert a.take() == [request]
    clock.now += 0.06
    sfu.on_datagram(c, request)
    assert a.take() == [request]
    sfu.on_datagram(a, request)
    sfu.on_datagram(c, KeyframeRequest(12345, 0).serialize())
    stats = sfu.stats
    assert (stats.keyframe_requests_forwarded, stats.keyframe_requests_coalesced) == (
        2,
        2,
    )
    assert stats.keyframe_requests_refused == 2


def test_a_queue_that_never_empties_but_keeps_moving_is_not_congested():
    sfu, clock, a, b, c = room_of_three()
    for seq in range(100):  # a long path: its window always holds 3 back
        sfu.on_datagram(a, video(7, seq))
        clock.now += 0.02
        for conn in (b, c):
            queue = conn.quic._datagrams_pending
            while len(queue) > 3:
                queue.popleft()
    assert sfu.stats.dropped_queue_full == 0


def test_a_subscribers_nack_is_answered_from_the_sfu_cache():
    sfu, clock, a, b, c = room_of_three()
    for seq in range(5):
        sfu.on_datagram(a, video(7, seq))
    b.take()
    c.take()
    sfu.on_datagram(b, NackPacket.from_seqs(7, [1, 3, 9]).serialize())
    resent = [parse_packet(d) for d in b.take()]
    # Each repair twice, in its own datagram (lost only if both are).
    assert [(p.seq, p.transport_seq) for p in resent] == [
        (1, 5),
        (1, 6),
        (3, 7),
        (3, 8),
    ]
    assert a.take() == [] and c.take() == []  # the publisher is not bothered
    stats = sfu.stats
    assert (stats.nacks_received, stats.retransmissions) == (1, 4)
    assert stats.retransmissions_refused == 1  # 9 was never sent
    # The NACK's copy, 10 ms later, is not answered again.
    clock.now += 0.01
    sfu.on_datagram(b, NackPacket.from_seqs(7, [1, 3]).serialize())
    assert b.take() == [] and stats.nack_copies_ignored == 2
    # Later than the frame's deadline (two round trips of 50 ms + margin, at
    # least 250 ms): no.
    clock.now += 0.3
    sfu.on_datagram(b, NackPacket.from_seqs(7, [2]).serialize())
    assert b.take() == [] and stats.retransmissions_refused == 2
    sfu.on_datagram(b, b"\x68\x00")
    assert stats.dropped_malformed == 1


def test_the_sfu_nacks_what_it_missed_from_the_publisher():
    sfu, clock, a, b, c = room_of_three()
    sfu.on_datagram(a, video(7, 10))
    sfu.on_datagram(a, video(7, 13))
    (nack,) = [parse_packet(d) for d in a.take()]
    assert isinstance(nack, NackPacket) and nack.seqs() == [11, 12]
    clock.now += 0.02
    # The retransmission, forwarded ahead of the video still queued; its
    # second copy is not forwarded.
    sfu.on_datagram(a, video(7, 11))
    sfu.on_datagram(a, video(7, 11))
    assert [parse_packet(d).seq for d in b.take()] == [11, 10, 13]
    assert sfu.stats.packets_recovered == 1 and sfu.stats.dropped_duplicate == 1
    # The NACK's copy, for what is still missing (not a new request).
    assert [parse_packet(d).seqs() for d in a.take()] == [[12]]
    assert sfu.stats.nacks_sent == 2 and sfu.stats.packets_requested == 2
    clock.now += 0.05  # one round trip: 12 is asked for once more
    sfu.on_datagram(a, video(7, 14))
    assert [parse_packet(d).seqs() for d in a.take()] == [[12]]
    assert sfu.stats.packets_requested == 3


def test_audio_goes_ahead_of_queued_video():
    sfu, _, a, b, c = room_of_three()
    sfu.set_room("room", [(a, [7, 9]), (b, []), (c, [])])
    sfu.on_datagram(a, video(7, 0))
    sfu.on_datagram(a, video(7, 1))
    sfu.on_datagram(a, audio(9, 0))
    sfu.on_datagram(a, audio(9, 1))
    sent = [parse_packet(d) for d in b.take()]
    assert [(p.track_id, p.seq) for p in sent] == [(9, 0), (9, 1), (7, 0), (7, 1)]


def test_frames_are_dropped_whole_not_datagram_by_datagram():
    sfu, _, a, b, c = room_of_three(max_queued=4)

    def frame(number: int, keyframe: bool = False) -> None:
        for index in range(3):
            seq = 3 * number + index
            data = video(7, seq, frame=number, index=index, count=3, keyframe=keyframe)
            sfu.on_datagram(a, data)

    frame(0)
    frame(1)  # starts with 3 queued, under 4: all of it goes, ending at 6
    assert len(b.quic._datagrams_pending) == 6
    frame(2)  # starts at a full queue: dropped whole, and frame 3 after it
    frame(3)
    assert len(b.take()) == 6 and sfu.stats.frames_dropped == 4  # b's and c's
    assert sfu.stats.dropped_queue_full == 2 * 6
    assert a.take() == [KeyframeRequest(7, 0).serialize()]
    frame(4, keyframe=True)
    assert [parse_packet(d).seq for d in b.take()] == [12, 13, 14]


def test_a_member_who_joins_mid_frame_gets_the_track_from_its_next_frame():
    sfu, _, a, b, c = room_of_three()

    def send(number: int, index: int) -> None:
        data = video(7, 3 * number + index, frame=number, index=index, count=3)
        sfu.on_datagram(a, data)

    send(0, 0)
    send(0, 1)
    d = FakeConn()
    sfu.set_room("room", [(a, [7]), (b, [8]), (c, []), (d, [])])
    send(0, 2)  # the tail of a frame d never saw the head of
    send(1, 0)
    send(1, 1)
    assert [parse_packet(x).seq for x in d.take()] == [3, 4]
    assert len(b.take()) == 5 and sfu.stats.skipped_joining == 1
    assert sfu.stats.dropped_queue_full == 0
    assert sfu.snapshot()["sfu_frames_dropped_length"] == 0
    # Those already receiving are not held back when the room changes.
    sfu.set_room("room", [(a, [7]), (b, [8]), (c, []), (d, [])])
    send(1, 2)
    assert [parse_packet(x).seq for x in d.take()] == [5]
    # A track that ends and comes back starts again at a frame's head.
    sfu.set_room("room", [(a, []), (b, [8]), (c, []), (d, [])])
    sfu.set_room("room", [(a, [7]), (b, [8]), (c, []), (d, [])])
    send(2, 1)
    send(3, 0)
    assert [parse_packet(x).seq for x in d.take()] == [9]


def test_frames_behind_a_draining_keyframe_are_not_dropped_for_its_delay():
    sfu, clock, a, b, c = room_of_three(max_queued=40)
    sfu.set_room("room", [(a, [7]), (b, [])])
    for index in range(10):  # a keyframe of 10 datagrams, drained slowly
        data = video(7, index, frame=0, index=index, count=10, keyframe=True)
        sfu.on_datagram(a, data)
    for number in range(1, 12):
        clock.now += 0.033
        b.quic._datagrams_pending.popleft()
        sfu.on_datagram(a, video(7, 9 + number, frame=number))
    # The oldest datagram waited 0.36 s, over 0.15 s: in the keyframe's grace.
    assert sfu.stats.frames_dropped == 0
    clock.now += 0.2  # grace over, queue still old: dropped
    sfu.on_datagram(a, video(7, 21, frame=12))
    assert sfu.stats.frames_dropped == 1


def test_one_loss_costs_one_keyframe_however_many_ask():
    sfu, clock, a, b, c = room_of_three(keyframe_request_interval=0.3)
    request = KeyframeRequest(7, 0).serialize()
    sfu.on_datagram(b, request)
    clock.now += 0.2  # no keyframe yet: still outstanding
    sfu.on_datagram(c, request)
    assert a.take() == [request] and sfu.stats.keyframe_requests_coalesced == 1
    sfu.on_datagram(a, video(7, 0, keyframe=True))
    sfu.on_datagram(b, request)  # a new loss after the keyframe: asked again
    assert a.take() == [request]


def test_routes_follow_membership_and_rooms_stay_apart():
    sfu, _, a, b, c = room_of_three()
    d, e = FakeConn(), FakeConn()
    sfu.set_room("other", [(d, [20]), (e, [])])
    sfu.on_datagram(d, video(20))
    sfu.on_datagram(a, video(7))
    assert len(e.take()) == 1 and b.take() and c.take()
    assert a.take() == []
    sfu.on_datagram(e, KeyframeRequest(7, 0).serialize())
    assert sfu.stats.keyframe_requests_refused == 1 and a.take() == []

    # c leaves: routes are rebuilt without it, and its datagrams go nowhere.
    sfu.remove(c)
    sfu.set_room("room", [(a, [7]), (b, [8])])
    sfu.on_datagram(a, video(7, 1))
    sfu.on_datagram(c, video(7, 2))
    assert len(b.take()) == 1 and c.take() == []
    assert not sfu.is_routed(c)
    # b stops publishing track 8: its datagrams become foreign.
    sfu.set_room("room", [(a, [7]), (b, [])])
    sfu.on_datagram(b, video(8))
    assert a.take() == [] and sfu.stats.dropped_foreign_track == 1
    assert sfu.snapshot()["sfu_tracks"] == 2


def _mutated(track_id: int, size: int, position: int, value: int) -> bytes:
    data = bytearray(video(track_id, size=size))
    data[position % len(data)] = value
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=1300),
        st.builds(
            _mutated,
            st.sampled_from([7, 8, 9]),
            st.integers(1, 1150),
            st.integers(0, 1200),
            st.integers(0, 255),
        ),
    )
)
def test_garbage_never_raises_and_only_owned_media_gets_through(data):
    sfu, _, a, b, c = room_of_three(max_queued=10**6)
    sfu.on_datagram(a, data)
    forwarded = b.take()
    assert forwarded == c.take()
    for copy in forwarded:
        assert len(copy) == len(data) <= MAX_FORWARDED_DATAGRAM
        assert copy[0] >> 6 == 1 and (copy[0] >> 3) & 7 in (0, 1)
        assert copy[4:8] == (7).to_bytes(4, "big")
        assert copy[:2] + copy[4:] == data[:2] + data[4:]
    stats = sfu.stats
    assert stats.received == 1 and stats.forwarded == 2 * len(forwarded)


def test_feedback_per_hop_both_ways():
    sfu, clock, a, b, c = room_of_three()
    # What a publisher sends is reported back to it every 50 ms or so.
    for seq in range(20):
        data = bytearray(video(7, seq))
        data[2:4] = (1000 + seq).to_bytes(2, "big")
        if seq != 5:
            sfu.on_datagram(a, bytes(data))
        clock.now += 0.01
    a.take()
    reported = {}
    for packet in a.feedback:
        for offset, arrival in enumerate(packet.arrivals):
            reported[packet.base_seq + offset] = arrival is not None
    assert set(reported) >= set(range(1000, 1015))
    assert reported[1005] is False and reported[1004] and reported[1006]
    assert sfu.stats.feedback_sent == len(a.feedback) >= 2
    # A subscriber's feedback about what the SFU sent it is read, and a
    # malformed one is counted, not raised.
    sent = c.take()
    arrivals = [0.001 * i for i in range(len(sent))]
    report = FeedbackPacket.from_arrival_times(0, 0, arrivals).serialize()
    sfu.on_datagram(c, report)
    sfu.on_datagram(c, report[:-1])
    assert sfu.stats.dropped_malformed == 1
    assert sfu.stats.feedback_read == 1
    # The connection's window makes room for what the estimate of the path
    # lets the SFU send it (as a client's hop does), until the member leaves.
    estimate = sfu.endpoints[c].hop.estimator.target_bps
    assert estimate > 0
    assert c.quic._loss._cc.media_rate == estimate / 8
    assert b.quic._loss._cc.media_rate == 0  # no feedback from b yet
    sfu.remove(c)
    assert c.quic._loss._cc.media_rate == 0


def test_a_publisher_is_limited_to_what_a_cut_subscriber_path_takes():
    sfu, clock, a, b, c = room_of_three()
    feedback_seq = 0
    for i in range(300):
        clock.now = 100 + i * 0.01
        sfu.on_datagram(a, video(7, i, size=1000, frame=i))
        if i % 5 == 4:
            # c's path delivers at half the rate the SFU sends: a queue grows.
            got = [parse_packet(d).transport_seq for d in c.take()]
            arrivals = [0.02 * seq for seq in got]
            report = FeedbackPacket.from_arrival_times(feedback_seq, got[0], arrivals)
            feedback_seq = (feedback_seq + 1) & 0xFF
            sfu.on_datagram(c, report.serialize())
    a.take()
    limits = a.limits
    assert limits, sfu.stats
    assert {limit.track_id for limit in limits} == {7}
    # About 800 kbit/s arrive; c's path takes about half, shared by the two
    # tracks routed to it.
    assert limits[-1].max_bps < 0.9 * 800_000 / 2
    assert sfu.stats.rate_limits_sent == len(limits)


def test_an_unknown_path_limits_video_from_the_start_leaving_audio_its_share():
    sfu, clock, a, b, c = room_of_three()
    # a publishes video 7 and audio 9; b publishes nothing.
    sfu.set_room("room", [(a, [7, 9]), (b, []), (c, [])])
    sfu.on_datagram(a, audio(9, 0))
    sfu.on_datagram(a, video(7, 0, keyframe=True))
    a.take()
    (limit,) = a.limits
    # The paths' estimates start at 1 Mbit/s, 85% of it for publishers; the
    # audio track keeps 48 kbit/s (an even split gave video half).
    assert limit.track_id == 7
    assert limit.max_bps == 850_000 - 48_000


def test_repairs_go_ahead_of_queued_video_behind_audio_in_order():
    sfu, clock, a, b, c = room_of_three()
    sfu.set_room("room", [(a, [7, 9]), (b, []), (c, [])])
    for seq in range(3):
        sfu.on_datagram(a, video(7, seq))
    b.take()  # sent: seqs 0-2 are in b's retransmit cache
    for seq in range(3, 6):
        sfu.on_datagram(a, video(7, seq))  # a keyframe's worth, still queued
    sfu.on_datagram(b, NackPacket.from_seqs(7, [1]).serialize())
    sfu.on_datagram(b, NackPacket.from_seqs(7, [2]).serialize())
    sfu.on_datagram(a, audio(9, 0))
    sent = [parse_packet(d) for d in b.take()]
    assert [(p.track_id, p.seq) for p in sent] == [
        (9, 0),
        (7, 1),
        (7, 1),
        (7, 2),
        (7, 2),
        (7, 3),
        (7, 4),
        (7, 5),
    ]
    assert sfu.stats.retransmit_queued_behind == 3 + 4 + 5 + 6


def test_a_repair_from_the_publisher_goes_ahead_of_queued_video():
    sfu, clock, a, b, c = room_of_three()
    sfu.on_datagram(a, video(7, 0))
    sfu.on_datagram(a, video(7, 2))  # 1 lost on the publisher's hop
    a.take()  # the SFU's NACK
    b.take()
    sfu.on_datagram(a, video(7, 3))
    sfu.on_datagram(a, video(7, 4))
    sfu.on_datagram(a, video(7, 1))  # the publisher's retransmission
    assert [parse_packet(d).seq for d in b.take()] == [1, 3, 4]
    assert sfu.stats.packets_recovered == 1


def test_refused_retransmissions_are_counted_by_reason():
    sfu, clock, a, b, c = room_of_three()
    sfu.on_datagram(a, video(7, 0))
    b.take()
    for _ in range(3):
        sfu.on_datagram(b, NackPacket.from_seqs(7, [0, 5]).serialize())
        clock.now += 0.05
    stats = sfu.stats
    assert stats.retransmissions == 2 * 2  # at most twice per packet, 2 copies
    assert stats.retransmissions_refused_missing == 3
    assert stats.retransmissions_refused_exhausted == 1
    b.take()
    clock.now += 0.3
    sfu.on_datagram(a, video(7, 1))
    b.take()
    clock.now += 0.3
    sfu.on_datagram(b, NackPacket.from_seqs(7, [1]).serialize())
    assert stats.retransmissions_refused_late == 1


def test_a_keyframe_dropped_for_a_full_queue_asks_for_another():
    # bench/loss.py once saw a subscriber get 25 pictures in 15 s: the
    # keyframe the SFU asked for came while the queue was still full, was
    # dropped like the frames before it, and nothing asked again.
    sfu, clock, a, b, c = room_of_three(max_queued=4, keyframe_request_interval=0.3)
    sfu.set_room("room", [(a, [7]), (b, [])])
    for seq in range(5):
        sfu.on_datagram(a, video(7, seq))  # the fifth finds 4 queued: dropped
    assert a.take() == [KeyframeRequest(7, 0).serialize()]
    clock.now += 0.05
    sfu.on_datagram(a, video(7, 5, keyframe=True))  # queue still full
    assert a.take() == [KeyframeRequest(7, 0).serialize()]
    assert sfu.stats.frames_dropped == 2
    b.take()
    clock.now += 0.05
    sfu.on_datagram(a, video(7, 6, keyframe=True))
    assert [parse_packet(d).seq for d in b.take()] == [6]
    # Both drops were for the queue's length, and all seven frame starts
    # found it waiting under 150 ms (the clock moved only 0.1 s).
    counters = sfu.snapshot()
    assert counters["sfu_frames_dropped_length"] == 2
    assert counters["sfu_frames_dropped_delay"] == 0
    starts = [v for k, v in counters.items() if k.startswith("sfu_frame_starts")]
    assert sum(starts) == 7 and counters["sfu_frame_starts_queue_over_150ms"] == 0
    sfu.remove(b)  # a member gone keeps what its hop counted
    assert sfu.snapshot()["sfu_frames_dropped_length"] == 2


def test_a_keyframe_into_a_late_queue_does_not_extend_the_grace():
    # Keyframes every half second, each renewing the grace, once let a
    # 300 kbit/s subscriber's queue wait 1.5 s: the grace is for a keyframe
    # that starts on a queue in time, not for one that joins a late one.
    sfu, clock, a, b, c = room_of_three(max_queued=60)
    sfu.set_room("room", [(a, [7]), (b, [])])
    for index in range(10):
        sfu.on_datagram(
            a, video(7, index, frame=0, index=index, count=10, keyframe=True)
        )
    clock.now += 0.4  # nothing drained: the queue waits 0.4 s
    for index in range(10):
        data = video(7, 10 + index, frame=1, index=index, count=10, keyframe=True)
        sfu.on_datagram(a, data)  # in the first keyframe's grace: it goes
    assert sfu.stats.frames_dropped == 0
    clock.now += 0.2  # the first grace is over; the queue waits 0.6 s
    sfu.on_datagram(a, video(7, 20, frame=2))
    assert sfu.stats.frames_dropped == 1
