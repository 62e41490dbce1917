"""The media datagram header: golden bytes, round trips, garbage, in-place rewrite."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from codec.media import (
    MAX_FEEDBACK_STATUSES,
    MAX_MEDIA_PAYLOAD,
    AudioPacket,
    FeedbackPacket,
    KeyframeRequest,
    NackPacket,
    PacketError,
    PacketKind,
    ProbePacket,
    RateLimit,
    Unwrapper,
    VideoPacket,
    parse_packet,
    rewrite_transport_seq,
    seq_delta,
)
from codec.media.feedback import FEEDBACK_HEADER_SIZE
from codec.media.packet import AUDIO_HEADER_SIZE, PROBE_HEADER_SIZE, VIDEO_HEADER_SIZE

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=300)

AUDIO = AudioPacket(
    track_id=7,
    seq=0xFFFE,
    transport_seq=0x1234,
    timestamp=0x00BB8000,
    level=42,
    voice_activity=True,
    payload=b"opus",
)
VIDEO = VideoPacket(
    track_id=0xCAFEF00D,
    seq=0x0102,
    transport_seq=0xFFFF,
    timestamp=0x12345678,
    frame_number=0x0203,
    fragment_index=1,
    fragment_count=3,
    keyframe=True,
    layer=0x21,
    payload=b"\x00\x00\x01\x65",
)
PROBE = ProbePacket(cluster_id=5, transport_seq=0x0A0B, padding_size=6)
KEYFRAME_REQUEST = KeyframeRequest(track_id=0xCAFEF00D, layer=0x10)
RATE_LIMIT = RateLimit(track_id=0xCAFEF00D, max_bps=250_000)
NACK = NackPacket(track_id=0xCAFEF00D, entries=((0xFFFE, 0x0005), (0x0040, 0)))
FEEDBACK = FeedbackPacket(
    feedback_seq=9,
    base_seq=0xFFFD,
    reference_time=0x10000,
    arrivals=(0, None, 4, 300, 290, None),
)

GOLDEN = [
    ("audio.bin", AUDIO),
    ("video.bin", VIDEO),
    ("probe.bin", PROBE),
    ("keyframe_request.bin", KEYFRAME_REQUEST),
    ("feedback.bin", FEEDBACK),
    ("nack.bin", NACK),
    ("rate_limit.bin", RATE_LIMIT),
]


@pytest.mark.parametrize(("name", "packet"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_bytes(golden, name, packet):
    data = golden(name)
    assert packet.serialize() == data
    assert parse_packet(data) == packet


def test_nack_packs_sequence_numbers_into_runs_across_the_wrap():
    nack = NackPacket.from_seqs(0xCAFEF00D, [0x40, 1, 0xFFFF, 0xFFFE])
    assert nack == NACK
    assert nack.seqs() == [0xFFFE, 0xFFFF, 1, 0x40]
    many = NackPacket.from_seqs(9, range(100, 200))
    assert many.seqs() == list(range(100, 200))
    assert len(many.entries) == 6  # 17 packets per entry
    with pytest.raises(LocalProtocolError):
        NackPacket.from_seqs(9, [])
    with pytest.raises(LocalProtocolError):
        NackPacket(9, ()).serialize()
    with pytest.raises(LocalProtocolError):
        NackPacket(9, ((0, 0),) * 256).serialize()


def test_header_sizes():
    assert (AUDIO_HEADER_SIZE, VIDEO_HEADER_SIZE, PROBE_HEADER_SIZE) == (14, 20, 4)
    assert FEEDBACK_HEADER_SIZE == 10
    assert len(VIDEO.serialize()) == VIDEO_HEADER_SIZE + len(VIDEO.payload)


def test_media_payload_is_a_view_not_a_copy(golden):
    data = bytearray(golden("video.bin"))
    packet = parse_packet(data)
    assert isinstance(packet.payload, memoryview)
    data[-1] = 0x41
    assert packet.payload[-1] == 0x41


@pytest.mark.parametrize("name", ["audio.bin", "video.bin", "probe.bin"])
def test_rewrite_transport_seq_touches_only_bytes_2_and_3(golden, name):
    original = golden(name)
    buf = bytearray(original)
    rewrite_transport_seq(buf, 0x1_ABCD)
    assert buf[2:4] == b"\xab\xcd"
    assert buf[:2] == original[:2] and buf[4:] == original[4:]
    assert parse_packet(buf).transport_seq == 0xABCD


@pytest.mark.parametrize(
    "name", ["feedback.bin", "keyframe_request.bin", "nack.bin", "rate_limit.bin"]
)
def test_rewrite_transport_seq_refuses_kinds_without_one(golden, name):
    buf = bytearray(golden(name))
    with pytest.raises(PacketError):
        rewrite_transport_seq(buf, 1)
    assert buf == golden(name)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty datagram"),
        (b"\x00" * 20, "unsupported header version 0"),
        (b"\xc0" + b"\x00" * 19, "unsupported header version 3"),
        (bytes([0x40 | (7 << 3)]) + b"\x00" * 19, "unknown packet kind 7"),
        (bytes.fromhex("7000CAFEF00D0003D0"), "rate limit of 9 bytes"),
        (bytes.fromhex("6800CAFEF00D"), "no entries"),
        (bytes.fromhex("6802CAFEF00DFFFE0005"), "exactly 2 entries"),
        (bytes.fromhex("6801CAFE"), "truncated"),
        (bytes.fromhex("40AA1234"), "audio datagram of 4 bytes is truncated"),
        (bytes.fromhex("4C21FFFFCAFEF00D0102123456780203000300030000"), "fragment 3"),
        (bytes.fromhex("4C21FFFFCAFEF00D0102123456780203000000000000"), "fragment 0"),
        (bytes.fromhex("4C21FFFFCAFEF00D0102123456780203000000"), "truncated"),
        (bytes.fromhex("4C21FFFFCAFEF00D010212345678020300000001"), "no payload"),
        (bytes.fromhex("6010CAFEF00D00"), "keyframe request of 7 bytes"),
        (bytes.fromhex("5009FFFD000600010000468000040128FF"), "truncated"),
        (bytes.fromhex("5009FFFD000600010000468000040128FFF600"), "1 stray bytes"),
        (bytes.fromhex("5009FFFD000100010000C0"), "status 3 is reserved"),
        (bytes.fromhex("5009FFFD000500010000"), "status vector is truncated"),
        (bytes.fromhex("5009FFFD01F500010000"), "over the limit"),
    ],
)
def test_malformed_datagrams_raise_packet_error(data, message):
    with pytest.raises(PacketError, match=message) as info:
        parse_packet(data)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.code == ErrorCode.BAD_FRAME


def test_oversized_media_payload_is_refused_both_ways():
    big = AudioPacket(1, 2, 3, 4, 5, False, bytes(MAX_MEDIA_PAYLOAD + 1))
    with pytest.raises(LocalProtocolError) as info:
        big.serialize()
    assert info.value.code == ErrorCode.TOO_LARGE
    header = AudioPacket(1, 2, 3, 4, 5, False, b"").serialize()
    with pytest.raises(PacketError, match="too large"):
        parse_packet(header + bytes(MAX_MEDIA_PAYLOAD + 1))
    assert parse_packet(header + bytes(MAX_MEDIA_PAYLOAD)).payload == bytes(
        MAX_MEDIA_PAYLOAD
    )


@pytest.mark.parametrize(
    "packet",
    [
        AudioPacket(1 << 32, 0, 0, 0, 0, False, b""),
        AudioPacket(0, 1 << 16, 0, 0, 0, False, b""),
        AudioPacket(0, 0, 0, 0, 128, False, b""),
        AudioPacket(0, 0, 0, -1, 0, False, b""),
        VideoPacket(0, 0, 0, 0, 0, 3, 3, False, 0, b"x"),
        VideoPacket(0, 0, 0, 0, 0, 0, 1, False, 256, b"x"),
        VideoPacket(0, 0, 0, 0, 0, 0, 1, False, 0, b""),
        ProbePacket(0, 0, MAX_MEDIA_PAYLOAD + 1),
        KeyframeRequest(-1, 0),
        FeedbackPacket(256, 0, 0, ()),
        FeedbackPacket(0, 0, 0, (0, 40_000)),
        FeedbackPacket(0, 0, 0, (0,) * (MAX_FEEDBACK_STATUSES + 1)),
    ],
)
def test_fields_out_of_range_are_local_errors(packet):
    with pytest.raises(LocalProtocolError):
        packet.serialize()


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=MAX_MEDIA_PAYLOAD)


@st.composite
def video_packets(draw: st.DrawFn) -> VideoPacket:
    count = draw(st.integers(1, 1024))
    return VideoPacket(
        track_id=draw(u32),
        seq=draw(u16),
        transport_seq=draw(u16),
        timestamp=draw(u32),
        frame_number=draw(u16),
        fragment_index=draw(st.integers(0, count - 1)),
        fragment_count=count,
        keyframe=draw(st.booleans()),
        layer=draw(u8),
        payload=draw(st.binary(min_size=1, max_size=MAX_MEDIA_PAYLOAD)),
    )


@st.composite
def feedback_packets(draw: st.DrawFn) -> FeedbackPacket:
    steps = draw(
        st.lists(
            st.one_of(st.none(), st.integers(0, 0xFF), st.integers(-0x8000, 0x7FFF)),
            max_size=MAX_FEEDBACK_STATUSES,
        )
    )
    arrivals: list[int | None] = []
    clock = 0
    for step in steps:
        if step is None:
            arrivals.append(None)
        else:
            clock += step
            arrivals.append(clock)
    return FeedbackPacket(draw(u8), draw(u16), draw(u32), tuple(arrivals))


any_packet = st.one_of(
    st.builds(
        AudioPacket, u32, u16, u16, u32, st.integers(0, 127), st.booleans(), payloads
    ),
    video_packets(),
    st.builds(ProbePacket, u8, u16, st.integers(0, MAX_MEDIA_PAYLOAD)),
    st.builds(KeyframeRequest, u32, u8),
    feedback_packets(),
    st.builds(
        NackPacket,
        u32,
        st.lists(st.tuples(u16, u16), min_size=1, max_size=255).map(tuple),
    ),
)


@SETTINGS
@given(any_packet)
def test_every_kind_round_trips(packet):
    data = packet.serialize()
    assert parse_packet(data) == packet
    assert parse_packet(data).serialize() == data
    assert data[0] >> 6 == 1


@SETTINGS
@given(st.binary(max_size=64) | st.binary(min_size=1, max_size=1300))
def test_garbage_parses_or_raises_packet_error_only(data):
    try:
        packet = parse_packet(data)
    except PacketError:
        return
    assert (data[0] >> 3) & 7 in set(PacketKind)
    assert parse_packet(packet.serialize()) == packet


@SETTINGS
@given(any_packet, st.data())
def test_damaged_datagrams_never_raise_anything_else(packet, data):
    raw = bytearray(packet.serialize())
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "extend"]))
        if action == "flip" and raw:
            index = data.draw(st.integers(0, len(raw) - 1))
            raw[index] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "cut":
            del raw[data.draw(st.integers(0, len(raw))) :]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=8))
    try:
        parse_packet(bytes(raw))
    except PacketError:
        pass


def test_feedback_from_arrival_times_quantizes_to_250_us():
    feedback = FeedbackPacket.from_arrival_times(
        3, 100, [10.0, None, 10.0012, 10.0009, None]
    )
    assert feedback.reference_time == 40_000
    assert feedback.arrivals == (0, None, 5, 4, None)
    assert parse_packet(feedback.serialize()) == feedback


def test_feedback_reference_time_wraps_at_32_bits():
    feedback = FeedbackPacket.from_arrival_times(0, 0, [2**32 * 250e-6 + 1.0])
    assert feedback.reference_time == 4_000


def test_empty_feedback_is_ten_bytes():
    assert len(FeedbackPacket(0, 0, 0, ()).serialize()) == 10


@pytest.mark.parametrize(
    ("a", "b", "delta"),
    [(0, 65535, 1), (65535, 0, -1), (5, 3, 2), (3, 5, -2), (32768, 0, -32768)],
)
def test_seq_delta_is_the_short_way_round(a, b, delta):
    assert seq_delta(a, b) == delta


def test_unwrapper_follows_wraps_and_reordering():
    unwrapper = Unwrapper(16)
    values = [65533, 65535, 65534, 1, 0, 2, 65535, 40000, 10]
    assert [unwrapper.unwrap(v) for v in values] == [
        65533,
        65535,
        65534,
        65537,
        65536,
        65538,
        65535,
        40000,
        65546,
    ]
    assert Unwrapper(32).unwrap(2**32 + 5) == 5
