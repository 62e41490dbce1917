"""The H.264 encoder and decoder: keyframe policy, live bitrate changes, and a
decoder that survives loss and garbage. libx264 runs single-threaded here, so
its output is deterministic."""

from __future__ import annotations

from types import SimpleNamespace

import av
import numpy as np
import pytest

from codec.media import (
    FramesLost,
    Reassembler,
    VideoCodecError,
    VideoDecoder,
    VideoEncoder,
    VideoPacketizer,
    parse_packet,
    read_stamp,
)
from codec.media.h264 import recovery_frame_count
from codec.media.stamp import SyntheticPattern
from codec.media.video import (
    MIN_BITRATE_BPS,
    VIDEO_CLOCK_HZ,
    contains_idr,
    encode_synthetic_clip,
)

FPS = 30


def keyframe_times(encoder: VideoEncoder, pattern, seconds: float, requests=()):
    """Encode ``seconds`` of video; ``requests`` are the times a keyframe is asked
    for. Returns the times (in frames) of the keyframes produced."""
    keys = []
    for n in range(round(seconds * FPS)):
        now = n / FPS
        if any(abs(now - t) < 1e-9 for t in requests):
            encoder.request_keyframe()
        (frame,) = encoder.encode(pattern.render(n, n), now=now)
        if frame.keyframe:
            keys.append(n)
    return keys


@pytest.fixture(scope="module")
def small_pattern() -> SyntheticPattern:
    return SyntheticPattern(320, 240)


def nal_types(unit: bytes) -> list[int]:
    """NAL unit types of an Annex B access unit, in order."""
    starts = [i for i in range(len(unit) - 3) if unit[i : i + 3] == b"\0\0\1"]
    return [unit[i + 3] & 0x1F for i in starts]


def test_first_frame_is_an_idr_with_parameter_sets_and_no_more_follow(clip):
    assert clip.keyframes == [True] + [False] * 59
    first = clip.access_units[0]
    assert nal_types(first)[:2] == [7, 8] and 5 in nal_types(first)
    assert contains_idr(first)
    assert not any(contains_idr(unit) for unit in clip.access_units[1:])


def test_keyframe_requests_are_rate_limited_and_merged(small_pattern):
    encoder = VideoEncoder(320, 240, FPS, 200_000, min_keyframe_interval_s=0.5)
    keys = keyframe_times(encoder, small_pattern, 2.0, requests=(0.1, 0.2, 1.2))
    assert keys == [0, 15, 36]
    assert encoder.keyframes_encoded == 3


def test_force_keyframe_skips_the_rate_limit(small_pattern):
    encoder = VideoEncoder(320, 240, FPS, 200_000, min_keyframe_interval_s=5.0)
    encoder.encode(small_pattern.render(0, 0), now=0.0)
    (frame,) = encoder.encode(small_pattern.render(1, 0), now=0.04, force_keyframe=True)
    assert frame.keyframe and contains_idr(frame.data)
    assert nal_types(frame.data) == [7, 8, 5], "SPS and PPS precede the IDR"


def test_periodic_keyframes_follow_the_callers_clock(small_pattern):
    encoder = VideoEncoder(320, 240, FPS, 200_000, keyframe_interval_s=1.0)
    assert keyframe_times(encoder, small_pattern, 2.5) == [0, 30, 60]


def bitrate_kbps(sizes: list[int]) -> float:
    return sum(sizes) * 8 * FPS / len(sizes) / 1000


@pytest.mark.parametrize("intra_refresh_s", [None, 1.0])
def test_bitrate_follows_set_bitrate_both_ways_without_a_keyframe(intra_refresh_s):
    """Open at 300 kbit/s (ceiling 1.2 Mbit/s), drop to 100 kbit/s, then raise
    to 900 kbit/s: the last 30 frames of each 45-frame phase track the target.
    With intra refresh x264 undershoots the lowest target (measured 63 kbit/s:
    the sweep's intra blocks cost more there), but follows both ways."""
    pattern = SyntheticPattern(640, 480)
    encoder = VideoEncoder(640, 480, FPS, 300_000, intra_refresh_s=intra_refresh_s)
    assert encoder.max_bitrate_bps == 1_200_000
    phases = []
    for phase, target in enumerate([300_000, 100_000, 900_000]):
        assert encoder.set_bitrate(target) == target
        sizes = []
        for n in range(phase * 45, phase * 45 + 45):
            (frame,) = encoder.encode(pattern.render(n, n), now=n / FPS)
            assert frame.keyframe == (n == 0)
            sizes.append(len(frame.data))
        phases.append(bitrate_kbps(sizes[15:]))
    start, low, high = phases
    assert 240 < start < 360
    assert (70 if intra_refresh_s is None else 50) < low < 130
    assert high > 2 * start
    assert encoder.keyframes_encoded == 1


def test_set_bitrate_clamps_to_the_configured_range():
    encoder = VideoEncoder(320, 240, FPS, 200_000, max_bitrate_bps=500_000)
    assert encoder.set_bitrate(10_000_000) == 500_000
    assert encoder.set_bitrate(1) == MIN_BITRATE_BPS
    assert encoder.bitrate_bps == MIN_BITRATE_BPS


def test_encoder_accepts_rgb_yuv_and_av_frames_and_scales(small_pattern):
    encoder = VideoEncoder(320, 240, FPS, 200_000)
    rgb = small_pattern.render(0, 0)
    yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    yuv.pict_type = av.video.frame.PictureType.I
    big = av.VideoFrame.from_ndarray(np.repeat(np.repeat(rgb, 2, 0), 2, 1), "rgb24")
    inputs = [rgb, yuv.to_ndarray(), yuv, big]
    decoder = VideoDecoder()
    for n, frame in enumerate(inputs):
        (encoded,) = encoder.encode(frame, now=n / FPS)
        assert encoded.keyframe == (n == 0)
        (image,) = decoder.decode(encoded.data)
        assert image.shape == (240, 320, 3)
        assert read_stamp(image) == (0, 0)


def test_pts_is_the_capture_time_on_the_90_khz_clock(small_pattern):
    encoder = VideoEncoder(320, 240, FPS, 200_000)
    (frame,) = encoder.encode(small_pattern.render(0, 0), now=50_000.5)
    assert frame.pts == round(50_000.5 * VIDEO_CLOCK_HZ) % 2**32


@pytest.mark.parametrize(
    ("args", "message"), [((321, 240, 30, 1), "even"), ((320, 240, 0, 1), "fps")]
)
def test_bad_encoder_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        VideoEncoder(*args)


def test_bad_frame_shape_is_refused():
    encoder = VideoEncoder(320, 240, FPS, 200_000)
    with pytest.raises(ValueError, match="shape"):
        encoder.encode(np.zeros((240, 320, 4), np.uint8), now=0.0)


def test_codec_errors_are_translated(monkeypatch):
    encoder = VideoEncoder(320, 240, FPS, 200_000)

    def refuse(frame):
        raise av.error.InvalidDataError(1094995529, "refused")

    monkeypatch.setattr(encoder, "_context", SimpleNamespace(encode=refuse))
    with pytest.raises(VideoCodecError, match="refused"):
        encoder.encode(np.zeros((240, 320, 3), np.uint8), now=0.0)


def test_decoder_reads_back_every_stamp(clip):
    decoder = VideoDecoder()
    for n, unit in enumerate(clip.access_units):
        (image,) = decoder.decode(unit)
        assert read_stamp(image) == (n, clip.capture_ms(n))
    assert (decoder.frames_decoded, decoder.frames_discarded) == (60, 0)
    assert not decoder.needs_keyframe


def test_decoder_joining_mid_stream_waits_for_a_keyframe(clip):
    decoder = VideoDecoder()
    assert decoder.needs_keyframe
    assert all(decoder.decode(unit) == [] for unit in clip.access_units[5:10])
    (image,) = decoder.decode(clip.access_units[0])
    assert read_stamp(image) == (0, clip.capture_ms(0))
    assert decoder.frames_discarded == 5


@pytest.mark.parametrize(
    "damage",
    [
        lambda unit: unit[: len(unit) // 2],
        lambda unit: bytes(np.random.default_rng(1).integers(0, 256, 700, np.uint8)),
        lambda unit: b"",
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_decoder_survives_damage_and_asks_for_a_keyframe(clip, damage):
    decoder = VideoDecoder()
    for unit in clip.access_units[:10]:
        decoder.decode(unit)
    assert decoder.decode(damage(clip.access_units[10])) == []
    assert decoder.needs_keyframe
    assert decoder.decode(clip.access_units[11]) == []
    (image,) = decoder.decode(clip.access_units[0])
    assert read_stamp(image) == (0, clip.capture_ms(0))


def test_missing_fragment_end_to_end():
    """Publisher → lossy link → receiver, on a virtual clock: one fragment of
    frame 10 is lost; the receiver reports the loss, asks for a keyframe, skips
    the frames it cannot decode, and shows correct pictures again after it."""
    width, height = 320, 240
    pattern = SyntheticPattern(width, height)
    encoder = VideoEncoder(width, height, FPS, 300_000, min_keyframe_interval_s=0.2)
    packetizer = VideoPacketizer(track_id=1)
    reassembler = Reassembler(timeout_s=0.05)
    decoder = VideoDecoder()
    shown: dict[int, tuple[int, int] | None] = {}
    keyframe_asked_at = []
    for n in range(40):
        now = n / FPS
        (frame,) = encoder.encode(pattern.render(n, 5 * n), now=now)
        events = reassembler.expire(now)
        for packet in packetizer.packetize(frame.data, frame.pts, frame.keyframe):
            datagram = packet.serialize()
            if (packet.frame_number, packet.fragment_index) == (10, 0):
                continue
            events += reassembler.push(parse_packet(datagram), now + 0.01)
        for event in events:
            if isinstance(event, FramesLost):
                decoder.frame_lost()
                encoder.request_keyframe()
                keyframe_asked_at.append(n)
                continue
            for image in decoder.decode(event.data):
                shown[event.frame_number] = read_stamp(image)
    (asked_at,) = keyframe_asked_at
    assert 10 < asked_at <= 10 + 3, "loss seen within timeout plus a frame or two"
    recovered = min(k for k in shown if k > 10)
    assert recovered == asked_at + 1, "the very next frame is the keyframe"
    assert set(shown) == set(range(10)) | set(range(recovered, 40))
    assert all(stamp == (k, 5 * k) for k, stamp in shown.items())
    assert reassembler.stats.frames_lost == 1


def test_a_synthetic_clip_loops_from_its_keyframe_with_every_stamp_readable():
    clip = encode_synthetic_clip(320, 240, FPS, 300_000, 10)
    assert [frame.keyframe for frame in clip] == [True] + [False] * 9
    decoder = VideoDecoder()
    for n, frame in enumerate(clip + clip):  # sent twice in a row, as a loop
        (image,) = decoder.decode(frame.data)
        assert read_stamp(image) == (n % 10, 0)
    assert decoder.frames_discarded == 0


def test_a_refresh_wave_after_a_loss_makes_the_picture_whole_without_a_keyframe():
    """Intra refresh every 0.5 s (15 frames): frame 20 is lost; the decoder
    shows nothing until the wave that begins after it (frame 30) has swept the
    picture (frame 44), then pictures identical to a lossless decode."""
    pattern = SyntheticPattern(320, 240)
    encoder = VideoEncoder(320, 240, FPS, 300_000, intra_refresh_s=0.5)
    units = [
        encoder.encode(pattern.render(n, 1000 + n), now=n / FPS)[0] for n in range(60)
    ]
    assert [n for n, u in enumerate(units) if u.keyframe] == [0]
    waves = {n: recovery_frame_count(u.data) for n, u in enumerate(units)}
    assert {n: c for n, c in waves.items() if c is not None} == {
        15: 14,
        30: 14,
        45: 14,
    }
    reference = VideoDecoder()
    clean = [reference.decode(u.data) for u in units]
    decoder = VideoDecoder()
    shown = {}
    for n, unit in enumerate(units):
        if n == 20:
            decoder.frame_lost()
            continue
        for image in decoder.decode(unit.data):
            shown[n] = image
        if 20 < n < 44:
            assert decoder.needs_keyframe
    assert sorted(shown) == [*range(20), *range(44, 60)]
    for n in range(44, 60):
        assert np.array_equal(shown[n], clean[n][0])
        assert read_stamp(shown[n]) == (n, 1000 + n)
    assert decoder.refresh_recoveries == 1 and not decoder.needs_keyframe
    assert decoder.frames_hidden == 23


def test_recovery_point_parsing_never_raises():
    for data in (b"", b"\x00\x00\x01", b"\x00\x00\x01\x06", b"\x00\x00\x01\x06\xff",
                 b"\x00\x00\x01\x06\x06\x02", b"\x00\x00\x01\x06\x06\x01\x00",
                 b"\x00\x00\x01\x06\x06\x01\x80\x80"):  # fmt: skip
        assert recovery_frame_count(data) in (None, 0)
    assert recovery_frame_count(b"\x00\x00\x01\x06\x06\x01\x80\x80") == 0
