import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import (
    MAX_FRAME_SIZE,
    ErrorCode,
    FrameDecoder,
    LocalProtocolError,
    OversizedFrame,
    RemoteProtocolError,
    encode_frame,
)


def test_frame_is_length_prefixed_big_endian():
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_encoding_over_the_limit_is_a_local_error():
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(b"x" * (MAX_FRAME_SIZE + 1))
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def test_frames_split_across_feeds():
    decoder = FrameDecoder()
    data = encode_frame(b"hello") + encode_frame(b"world")
    assert decoder.feed(data[:3]) == []
    assert decoder.feed(data[3:8]) == []
    assert decoder.feed(data[8:]) == [b"hello", b"world"]
    assert decoder.buffered == 0


def test_oversized_frame_is_skipped_without_buffering_it():
    decoder = FrameDecoder(max_size=10)
    big = struct.pack(">I", 1000) + b"x" * 1000
    out = decoder.feed(big[:500])
    assert out == []
    assert decoder.buffered == 0
    out = decoder.feed(big[500:] + encode_frame(b"ok"))
    assert out == [OversizedFrame(1000), b"ok"]


def test_oversized_frame_in_one_piece():
    decoder = FrameDecoder(max_size=4)
    out = decoder.feed(struct.pack(">I", 5) + b"12345" + encode_frame(b"abcd"))
    assert out == [OversizedFrame(5), b"abcd"]


def test_stream_ending_inside_a_frame_is_a_remote_error():
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x05ab")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.end_of_stream()
    assert info.value.code == ErrorCode.BAD_FRAME


def test_clean_end_of_stream():
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"x"))
    decoder.end_of_stream()


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_split_yields_the_same_frames(bodies, cuts):
    stream = b"".join(encode_frame(b) for b in bodies)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = FrameDecoder()
    out = []
    last = 0
    for point in [*points, len(stream)]:
        out += decoder.feed(stream[last:point])
        last = point
    assert out == bodies
    decoder.end_of_stream()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_garbage_never_raises_while_feeding(data, max_size):
    decoder = FrameDecoder(max_size=max_size)
    for i in range(0, len(data), 7):
        for frame in decoder.feed(data[i : i + 7]):
            assert isinstance(frame, (bytes, OversizedFrame))
            if isinstance(frame, bytes):
                assert len(frame) <= max_size


def test_a_decoder_gives_its_buffer_back_once_a_frame_completes():
    decoder = FrameDecoder()
    frame = encode_frame(b"x" * 60_000)
    assert decoder.feed(frame[:40_000]) == []
    assert decoder.held_bytes >= 40_000
    assert decoder.feed(frame[40_000:]) == [b"x" * 60_000]
    assert decoder.buffered == 0 and decoder.held_bytes < 1024
