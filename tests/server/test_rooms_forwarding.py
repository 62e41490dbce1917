"""The SFU's forwarding rules on fake connections and a hand-driven clock."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from codec.media import FeedbackPacket, KeyframeRequest, ProbePacket, VideoPacket
from server.sfu import MAX_FORWARDED_DATAGRAM, Forwarder


class FakeQuic:
    def __init__(self) -> None:
        self._datagrams_pending: deque[bytes] = deque()

    def send_datagram_frame(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self._datagrams_pending.append(data)


class FakeConn:
    def __init__(self) -> None:
        self.quic = FakeQuic()
        self.transmits = 0

    def transmit_soon(self) -> None:
        self.transmits += 1

    def take(self) -> list[bytes]:
        sent = list(self.quic._datagrams_pending)
        self.quic._datagrams_pending.clear()
        return sent


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def video(track_id: int, seq: int = 0, size: int = 100) -> bytes:
    return VideoPacket(
        track_id=track_id,
        seq=seq,
        transport_seq=0,
        timestamp=0,
        frame_number=seq,
        fragment_index=0,
        fragment_count=1,
        keyframe=False,
        layer=0,
        payload=b"x" * size,
    ).serialize()


def room_of_three(max_queued: int = 128):
    clock = Clock()
    sfu = Forwarder(
        clock,
        max_queued=max_queued,
        max_queue_delay=0.15,
        keyframe_request_interval=0.1,
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
    for _ in range(65537):
        sfu.on_datagram(a, video(7))
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
        bytes([0x68]) + video(7)[1:],  # reserved kind 5
        video(7, size=1150) + b"x",  # over the 1,170-byte limit
        b"\x60\x00\x00\x00",  # a truncated keyframe request
    ):
        sfu.on_datagram(a, bad)
    assert len(video(7, size=1150)) == MAX_FORWARDED_DATAGRAM
    sfu.on_datagram(a, video(7, size=1150))
    stats = sfu.stats
    assert stats.dropped_not_member == 1
    assert stats.dropped_foreign_track == 2
    assert stats.dropped_malformed == 6
    assert stats.forwarded == 2 and len(c.take()) == 1


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
    c.quic._datagrams_pending.extend([b"queued"] * 3)
    sfu.on_datagram(a, video(7, 5))
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
    sfu.on_datagram(a, video(7, 3))  # drained: c gets media again
    assert len(c.take()) == 1 and len(b.take()) == 1


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
    sfu.on_datagram(a, video(7))
    sfu.on_datagram(c, video(7))
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
