"""Fragmentation and reassembly on a virtual clock: reordering, duplicates, loss,
timeouts, wrap-around and the memory cap."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from codec.errors import LocalProtocolError
from codec.media import (
    BASE_MEDIA_PAYLOAD,
    MAX_FRAGMENTS,
    MAX_MEDIA_PAYLOAD,
    CompletedFrame,
    FramesLost,
    Reassembler,
    VideoPacket,
    VideoPacketizer,
    parse_packet,
    split_frame,
)

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150)
TIMEOUT = 0.15


def frame_bytes(number: int, size: int) -> bytes:
    return bytes((number * 7 + i) & 0xFF for i in range(size))


def make_stream(
    sizes: list[int], keyframes: set[int] = frozenset({0}), first_frame: int = 0
) -> list[list[VideoPacket]]:
    """Packets of one track, frame by frame, through a real serialize/parse."""
    packetizer = VideoPacketizer(track_id=9, first_frame=first_frame)
    frames = []
    for n, size in enumerate(sizes):
        packets = packetizer.packetize(
            frame_bytes(n, size), timestamp=n * 3000, keyframe=n in keyframes
        )
        frames.append([parse_packet(p.serialize()) for p in packets])
    return frames


def delivered(events: list) -> list[int]:
    return [e.frame_number for e in events if isinstance(e, CompletedFrame)]


def lost(events: list) -> list[tuple[int, int]]:
    return [(e.first, e.count) for e in events if isinstance(e, FramesLost)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1, [1]),
        (1150, [1150]),
        (1151, [576, 575]),
        (2300, [1150, 1150]),
        (5000, [1000] * 5),
        (5003, [1001, 1001, 1001, 1000, 1000]),
    ],
)
def test_split_frame_balances_sizes(size, expected):
    data = bytes(range(256)) * (size // 256 + 1)
    pieces = split_frame(data[:size])
    assert [len(p) for p in pieces] == expected
    assert b"".join(pieces) == data[:size]


def test_split_frame_refuses_empty_and_oversized_frames():
    with pytest.raises(LocalProtocolError):
        split_frame(b"")
    split_frame(bytes(MAX_FRAGMENTS * BASE_MEDIA_PAYLOAD))
    with pytest.raises(LocalProtocolError):
        split_frame(bytes(MAX_FRAGMENTS * BASE_MEDIA_PAYLOAD + 1))
    for size in (0, MAX_MEDIA_PAYLOAD + 1):
        with pytest.raises(LocalProtocolError):
            split_frame(b"frame", size)


def test_fragments_follow_the_size_the_path_carries():
    """Once 1,452-byte packets are confirmed a frame takes fewer, larger
    datagrams; at 1,280 bytes (or any size) every fragment fits it."""
    frame = bytes(range(250)) * 92  # 23,000 bytes: 20 fragments of 1,150
    packetizer = VideoPacketizer(track_id=3)
    base = packetizer.packetize(frame, 0, True)
    large = packetizer.packetize(frame, 3000, False, max_payload=1452 - 50)
    small = packetizer.packetize(frame, 6000, False, max_payload=1280 - 50)
    assert [len(p.serialize()) for p in base] == [1170] * 20
    assert (len(large), len(small)) == (17, 19)
    assert max(len(p.serialize()) for p in large) <= 1452 - 30
    assert max(len(p.serialize()) for p in small) <= 1280 - 30
    for packets in (base, large, small):
        assert b"".join(bytes(p.payload) for p in packets) == frame


def test_packetizer_counters_wrap_at_16_bits():
    packetizer = VideoPacketizer(5, first_seq=65534, first_frame=65535)
    first = packetizer.packetize(bytes(3000), timestamp=2**32 + 7, keyframe=True)
    second = packetizer.packetize(b"x", timestamp=8, keyframe=False)
    assert [p.seq for p in first + second] == [65534, 65535, 0, 1]
    assert [p.frame_number for p in first + second] == [65535] * 3 + [0]
    assert [(p.fragment_index, p.fragment_count) for p in first] == [
        (0, 3),
        (1, 3),
        (2, 3),
    ]
    assert first[0].timestamp == 7 and first[0].keyframe and not second[0].keyframe
    assert all(p.transport_seq == 0 and p.track_id == 5 for p in first + second)


def test_in_order_delivery_rebuilds_every_frame():
    stream = make_stream([3000, 800, 2400])
    reassembler = Reassembler(TIMEOUT)
    events = []
    for n, packets in enumerate(stream):
        for i, packet in enumerate(packets):
            events += reassembler.push(packet, now=n * 0.033 + i * 0.001)
    assert delivered(events) == [0, 1, 2]
    assert [e.data for e in events] == [
        frame_bytes(n, s) for n, s in enumerate([3000, 800, 2400])
    ]
    first = events[0]
    assert first.keyframe and first.timestamp == 0
    assert (first.first_arrival, first.completed_at) == (0.0, 0.002)
    assert reassembler.frames_in_progress == 0
    assert reassembler.next_deadline() is None


def test_reordered_frames_come_out_in_order():
    stream = make_stream([2000, 2000, 2000])
    reassembler = Reassembler(TIMEOUT)
    order = [stream[1][0], stream[0][1], *stream[2], stream[0][0], stream[1][1]]
    events = []
    for i, packet in enumerate(order):
        events += reassembler.push(packet, now=i * 0.001)
    assert delivered(events) == [0, 1, 2]
    assert reassembler.stats.frames_completed == 3


def test_duplicates_are_counted_and_ignored():
    stream = make_stream([2500, 100])
    reassembler = Reassembler(TIMEOUT)
    events = []
    for packet in stream[0] + stream[0][:2] + stream[1] + stream[1] + stream[0]:
        events += reassembler.push(packet, now=0.0)
    assert delivered(events) == [0, 1]
    assert reassembler.stats.duplicate_packets == 2 + 1 + 3
    assert reassembler.stats.late_packets == 0


def test_missing_fragment_is_given_up_after_the_timeout():
    stream = make_stream([1500] * 5)
    reassembler = Reassembler(TIMEOUT)
    events = []
    for n, packets in enumerate(stream):
        for packet in packets:
            if (n, packet.fragment_index) != (2, 1):
                events += reassembler.push(packet, now=n * 0.033)
    assert delivered(events) == [0, 1]
    assert reassembler.frames_in_progress == 3
    assert reassembler.next_deadline() == pytest.approx(0.066 + TIMEOUT)
    assert reassembler.expire(0.066 + TIMEOUT - 0.001) == []
    events = reassembler.expire(0.066 + TIMEOUT)
    assert lost(events) == [(2, 1)] and delivered(events) == [3, 4]
    assert isinstance(events[0], FramesLost)
    stats = reassembler.stats
    assert (stats.frames_dropped_incomplete, stats.frames_lost) == (1, 1)
    assert reassembler.push(stream[2][1], now=1.0) == []
    assert reassembler.stats.late_packets == 1


def test_a_frame_never_seen_is_timed_from_the_next_frame():
    stream = make_stream([500] * 4)
    reassembler = Reassembler(TIMEOUT)
    events = []
    for n in (0, 1, 3):
        events += reassembler.push(stream[n][0], now=n * 0.033)
    assert delivered(events) == [0, 1]
    assert reassembler.next_deadline() == pytest.approx(0.099 + TIMEOUT)
    events = reassembler.expire(0.099 + TIMEOUT)
    assert lost(events) == [(2, 1)] and delivered(events) == [3]
    assert reassembler.stats.frames_dropped_incomplete == 0


def test_slowly_paced_frame_is_not_abandoned_while_fragments_arrive():
    (big,) = make_stream([20 * 1150])
    reassembler = Reassembler(TIMEOUT)
    events = []
    for i, packet in enumerate(big):
        events += reassembler.push(packet, now=i * 0.1)
        events += reassembler.expire(i * 0.1 + 0.099)
    assert delivered(events) == [0] and lost(events) == []


def test_complete_keyframe_skips_the_wait():
    stream = make_stream([1500] * 4, keyframes={0, 3})
    reassembler = Reassembler(TIMEOUT)
    events = []
    for n in range(4):
        for packet in stream[n]:
            if n != 1 and (n, packet.fragment_index) != (2, 0):
                events += reassembler.push(packet, now=n * 0.033)
    assert delivered(events) == [0, 3]
    assert lost(events) == [(1, 1), (2, 1)]
    assert reassembler.frames_in_progress == 0


def test_frames_blocked_behind_a_gap_follow_the_loss_event():
    stream = make_stream([500] * 4)
    reassembler = Reassembler(TIMEOUT)
    for n in (0, 2, 3):
        reassembler.push(stream[n][0], now=0.0)
    events = reassembler.expire(TIMEOUT)
    assert [type(e) for e in events] == [FramesLost, CompletedFrame, CompletedFrame]


def test_memory_is_capped_by_giving_up_the_oldest_gap():
    stream = make_stream([2000] * 12)
    reassembler = Reassembler(timeout_s=10.0, max_frames=4)
    events = []
    for n, packets in enumerate(stream):
        events += reassembler.push(packets[0], now=n * 0.033)
        assert reassembler.frames_in_progress <= 4
    assert delivered(events) == []
    assert lost(events) == [(n, 1) for n in range(8)]
    assert reassembler.stats.frames_dropped_incomplete == 8


def test_frame_numbers_wrap_around():
    stream = make_stream([300] * 6, first_frame=65533)
    reassembler = Reassembler(TIMEOUT)
    events = []
    for n, packets in enumerate(stream):
        events += reassembler.push(packets[0], now=n * 0.033)
    assert [p[0].frame_number for p in stream] == [65533, 65534, 65535, 0, 1, 2]
    assert delivered(events) == [65533, 65534, 65535, 65536, 65537, 65538]


def test_startup_reordering_does_not_lose_the_first_frame():
    stream = make_stream([1500, 1500])
    reassembler = Reassembler(TIMEOUT)
    events = reassembler.push(stream[1][0], now=0.0)
    for packet in [*stream[0], stream[1][1]]:
        events += reassembler.push(packet, now=0.001)
    assert delivered(events) == [0, 1] and lost(events) == []


def test_the_tail_of_a_frame_under_way_at_the_start_is_skipped_not_lost():
    stream = make_stream([2000] * 3)
    reassembler = Reassembler(TIMEOUT)
    events = reassembler.push(stream[0][1], now=0.0)  # listening from here on
    for n in (1, 2):
        for packet in stream[n]:
            events += reassembler.push(packet, now=n * 0.033)
    events += reassembler.expire(TIMEOUT)
    assert delivered(events) == [1, 2] and lost(events) == []
    stats = reassembler.stats
    assert (stats.tails_skipped, stats.frames_lost) == (1, 0)
    # Once the stream started, a frame without its head is lost like any other.
    stream = make_stream([2000] * 3)
    reassembler = Reassembler(TIMEOUT)
    events = [*reassembler.push(stream[0][0], now=0.0)]
    events += reassembler.push(stream[0][1], now=0.0)
    events += reassembler.push(stream[1][1], now=0.033)
    events += reassembler.push(stream[2][0], now=0.066)
    events += reassembler.push(stream[2][1], now=0.066)
    events += reassembler.expire(0.066 + TIMEOUT)
    assert delivered(events) == [0, 2] and lost(events) == [(1, 1)]
    assert reassembler.stats.tails_skipped == 0


def test_expire_at_the_deadline_always_acts():
    stream = make_stream([500] * 3)
    reassembler = Reassembler(timeout_s=0.1)
    reassembler.push(stream[0][0], now=0.0)
    reassembler.push(stream[2][0], now=0.7)
    deadline = reassembler.next_deadline()
    assert deadline is not None
    assert lost(reassembler.expire(deadline)) == [(1, 1)]
    assert reassembler.next_deadline() is None


def test_fragments_that_contradict_their_frame_are_dropped():
    (packets,) = make_stream([2000])
    liar = replace(packets[1], fragment_count=3)
    reassembler = Reassembler(TIMEOUT)
    reassembler.push(packets[0], now=0.0)
    assert reassembler.push(liar, now=0.0) == []
    assert reassembler.stats.inconsistent_packets == 1
    assert delivered(reassembler.push(packets[1], now=0.0)) == [0]


@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=25),
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.1]),
    max_frames=st.sampled_from([4, 16]),
)
# A keyframe (frame 8) whole before the last fragment of frame 7 arrives.
@example(sizes=[1] * 7 + [2301, 1], seed=0, loss=0.0, duplicate=0.0, max_frames=4)
def test_any_network_yields_each_frame_exactly_once_or_a_loss(
    sizes, seed, loss, duplicate, max_frames
):
    """Delay each packet by 0 to 50 ms (frames are 33 ms apart), drop some,
    duplicate some: every frame is then delivered intact and in order, or
    reported lost, exactly once; memory stays capped."""
    rng = random.Random(seed)
    stream = make_stream(sizes, keyframes={n for n in range(len(sizes)) if n % 8 == 0})
    arrivals = []
    for n, packets in enumerate(stream):
        for i, packet in enumerate(packets):
            sent = n * 0.033 + i * 0.0005
            if rng.random() < loss:
                continue
            for _ in range(2 if rng.random() < duplicate else 1):
                arrivals.append((sent + rng.uniform(0, 0.05), packet))
    arrivals.sort(key=lambda a: a[0])
    reassembler = Reassembler(TIMEOUT, max_frames=max_frames)
    events = []
    for now, packet in arrivals:
        events += reassembler.expire(now)
        events += reassembler.push(packet, now)
        assert reassembler.frames_in_progress <= max_frames
    events += reassembler.expire(1e9)
    outcome: list[int] = []
    for event in events:
        if isinstance(event, CompletedFrame):
            assert event.data == frame_bytes(
                event.frame_number, sizes[event.frame_number]
            )
            outcome.append(event.frame_number)
        else:
            outcome.extend(range(event.first, event.first + event.count))
    first = outcome[0] if outcome else 0
    assert outcome == list(range(first, first + len(outcome)))
    assert not outcome or outcome[-1] <= len(sizes) - 1
    if loss == 0.0:
        # Nothing was lost on the way: every frame is delivered, but for one
        # still incomplete when a whole keyframe overtook it (reordering), which
        # the reassembler gives up to jump to the keyframe rather than wait.
        assert outcome == list(range(first, len(sizes)))
        for event in events:
            if isinstance(event, FramesLost):
                assert (event.first + event.count) % 8 == 0, event
    stats = reassembler.stats
    assert stats.frames_completed == len(delivered(events))
    assert stats.frames_lost == sum(count for _, count in lost(events))
