"""The picture stamp: exact read-back through H.264 at low bitrate, and None (never
a wrong value) from damaged pictures."""

from __future__ import annotations

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.media import SyntheticPattern, VideoDecoder, VideoEncoder, read_stamp
from codec.media.stamp import STAMP_COLUMNS, STAMP_ROWS, stamp

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=60)


def cell(frame: np.ndarray, row: int, column: int) -> np.ndarray:
    size = frame.shape[1] / 40
    top, left = round(row * size), round(column * size)
    return frame[top : round((row + 1) * size), left : round((column + 1) * size)]


@pytest.mark.parametrize(
    ("frame_no", "capture_ms"),
    [(0, 0), (1, 2), (2**32 - 1, 2**32 - 1), (123_456, 1_732_000_000_123)],
)
def test_stamp_round_trips_modulo_2_32(frame_no, capture_ms):
    frame = np.full((480, 640, 3), 128, np.uint8)
    stamp(frame, frame_no, capture_ms)
    assert read_stamp(frame) == (frame_no % 2**32, capture_ms % 2**32)


def test_stamp_occupies_only_the_top_left_grid():
    frame = np.full((480, 640, 3), 128, np.uint8)
    stamp(frame, 5, 6)
    grid = frame[: STAMP_ROWS * 16, : STAMP_COLUMNS * 16]
    assert set(np.unique(grid)) <= {0, 255}
    frame[: STAMP_ROWS * 16, : STAMP_COLUMNS * 16] = 128
    assert (frame == 128).all()


@pytest.mark.parametrize(
    ("width", "height", "bitrate_bps"),
    [(640, 480, 500_000), (1280, 720, 500_000)],
)
def test_every_stamp_survives_h264_at_low_bitrate(width, height, bitrate_bps):
    pattern = SyntheticPattern(width, height)
    encoder = VideoEncoder(width, height, 30, bitrate_bps)
    decoder = VideoDecoder()
    total_bytes = 0
    for n in range(100):
        capture_ms = 1_700_000_000_000 + n * 33
        (frame,) = encoder.encode(pattern.render(n, capture_ms), now=n / 30)
        total_bytes += len(frame.data)
        (image,) = decoder.decode(frame.data)
        assert read_stamp(image) == (n, capture_ms % 2**32)
    assert total_bytes * 8 * 30 / 100 < bitrate_bps * 1.15


def test_stamp_survives_downscaling():
    frame = SyntheticPattern(1280, 720).render(77, 88)
    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
    for width, height in [(640, 360), (426, 240)]:
        small = video_frame.reformat(width, height).to_ndarray(format="rgb24")
        assert read_stamp(small) == (77, 88)


def test_frames_without_a_stamp_read_as_none():
    rng = np.random.default_rng(7)
    assert read_stamp(rng.integers(0, 256, (480, 640, 3), np.uint8)) is None
    assert read_stamp(np.zeros((480, 640, 3), np.uint8)) is None
    assert read_stamp(np.full((480, 640, 3), 255, np.uint8)) is None
    assert read_stamp(np.zeros((100, 120, 3), np.uint8)) is None
    assert read_stamp(np.zeros((480, 640), np.uint8)) is None


def test_a_gray_or_flipped_cell_reads_as_none():
    frame = SyntheticPattern(640, 480).render(3, 4)
    gray = frame.copy()
    cell(gray, 4, 4)[:] = 128
    assert read_stamp(gray) is None
    flipped = frame.copy()
    target = cell(flipped, 7, 11)
    target[:] = 255 - target
    assert read_stamp(flipped) is None


@pytest.mark.parametrize(("width", "height"), [(640, 480), (333, 250), (1280, 720)])
def test_only_each_cells_inner_half_is_read(width, height):
    """Blurred cell edges (what a decoder leaves) do not count; a cell whose
    inner half is between dark and light does, wherever it is."""
    frame = SyntheticPattern(width, height).render(2**31 + 5, 99)
    for row in range(STAMP_ROWS):
        for column in range(STAMP_COLUMNS):
            edges = cell(frame, row, column)
            inset_y, inset_x = edges.shape[0] // 4, edges.shape[1] // 4
            inner = edges[inset_y : edges.shape[0] - inset_y, inset_x:-inset_x].copy()
            edges[:] = 128
            edges[inset_y : edges.shape[0] - inset_y, inset_x:-inset_x] = inner
    assert read_stamp(frame) == (2**31 + 5, 99)
    for row, column in [(0, 0), (0, STAMP_COLUMNS - 1), (STAMP_ROWS - 1, 0),
                        (STAMP_ROWS - 1, STAMP_COLUMNS - 1)]:  # fmt: skip
        damaged = frame.copy()
        edges = cell(damaged, row, column)
        inset_y, inset_x = edges.shape[0] // 4, edges.shape[1] // 4
        edges[inset_y : edges.shape[0] - inset_y, inset_x:-inset_x] = 128
        assert read_stamp(damaged) is None


@SETTINGS
@given(
    a=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    b=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    mask=st.lists(st.booleans(), min_size=96, max_size=96),
)
def test_a_mix_of_two_stamps_is_never_misread(a, b, mask):
    """Stale macroblocks from the previous picture mix two stamps cell by cell:
    the result reads as one of them, or as None."""
    first = np.full((240, 320, 3), 128, np.uint8)
    second = first.copy()
    stamp(first, *a)
    stamp(second, *b)
    for index, take_second in enumerate(mask):
        if take_second:
            row, column = divmod(index, STAMP_COLUMNS)
            cell(first, row, column)[:] = cell(second, row, column)
    assert read_stamp(first) in (a, b, None)


def test_corrupted_decodes_never_yield_a_wrong_stamp(clip):
    """Feed FFmpeg's decoder directly (no keyframe gating) with lost and bit-
    flipped access units: the concealed pictures read as None or correctly."""
    rng = np.random.default_rng(11)
    decoder = av.CodecContext.create("h264", "r")
    outcomes = {"right": 0, "none": 0, "wrong": 0}
    for n, unit in enumerate(clip.access_units):
        if n in (8, 9, 30):
            continue
        if n % 5 == 2:
            damaged = bytearray(unit)
            for index in rng.integers(20, len(damaged), 6):
                damaged[index] ^= 0xFF
            unit = bytes(damaged)
        try:
            frames = decoder.decode(av.Packet(unit))
        except av.FFmpegError:
            continue
        for frame in frames:
            value = read_stamp(frame.to_ndarray(format="rgb24"))
            if value is None:
                outcomes["none"] += 1
            elif value == (n, clip.capture_ms(n)):
                outcomes["right"] += 1
            else:
                outcomes["wrong"] += 1
    assert outcomes["wrong"] == 0
    assert outcomes["none"] > 0 and outcomes["right"] > 0


def test_stamp_refuses_a_frame_too_small():
    with pytest.raises(ValueError, match="too small"):
        stamp(np.zeros((100, 120, 3), np.uint8), 1, 2)


def test_pattern_is_deterministic_and_moves():
    pattern = SyntheticPattern(320, 240, seed=3)
    first = pattern.render(10, 20)
    assert np.array_equal(first, SyntheticPattern(320, 240, seed=3).render(10, 20))
    assert not np.array_equal(first[100:], pattern.render(11, 20)[100:])
    assert first.shape == (240, 320, 3) and first.dtype == np.uint8


def test_a_smeared_but_clear_cell_still_reads():
    """A low-bitrate encode pulls cells towards grey (a light one read 172 in
    a lossy meeting at 320x240): still on its side of mid-grey, it counts."""
    frame = SyntheticPattern(320, 240).render(92, 5)
    for row in range(STAMP_ROWS):
        for column in range(STAMP_COLUMNS):
            target = cell(frame, row, column)
            light = target.mean() > 128
            target[:] = 165 if light else 90
    assert read_stamp(frame) == (92, 5)
