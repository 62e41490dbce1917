"""The client's media pieces on their own: handoff, pacing, sources, sinks,
the sender's frame dropping and the receiver's loss recovery."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.media import (
    DecodedFrame,
    FramePacer,
    FrameSaver,
    NewestFrame,
    SourceError,
    SyntheticSource,
    VideoReceiver,
    VideoSender,
    Y4mSink,
    parse_sink,
    parse_video_source,
)
from client.media.capture import CameraSource, FileSource, ScreenSource
from client.media.sinks import _yuv420, y4m_header
from codec.media import VideoPacketizer, parse_packet
from codec.media.recovery import REPAIR_COPIES, REPEAT_WINDOW_S, RetransmitCache
from codec.media.stamp import SyntheticPattern, read_stamp
from codec.media.video import VideoEncoder
from codec.messages import RoomTrack

W, H = 320, 240


def picture(n: int) -> DecodedFrame:
    image = SyntheticPattern(W, H).render(n, 1000 + n)
    return DecodedFrame(image, n, 0, False, time.monotonic())


def track(owner: str = "alice", track_id: int = 7, kind: str = "camera") -> RoomTrack:
    return RoomTrack(
        track_id=track_id,
        owner=owner,
        kind=kind,
        codec="h264",
        width=W,
        height=H,
        fps=15.0,
    )


def read_y4m(data: bytes) -> tuple[bytes, list[bytes]]:
    header, _, rest = data.partition(b"\n")
    frames = rest.split(b"FRAME\n")
    assert frames[0] == b""
    return header, frames[1:]


def test_newest_frame_hands_over_only_the_newest():
    slot = NewestFrame()
    assert slot.take(timeout=0.01) is None
    slot.put(picture(1))
    slot.put(picture(2))
    assert slot.take(timeout=0).frame_number == 2
    assert slot.replaced == 1
    assert slot.take(timeout=0.01) is None
    assert slot.peek().frame_number == 2
    slot.put(picture(3))
    assert slot.replaced == 1
    threading.Timer(0.05, slot.close).start()
    assert slot.take(timeout=5).frame_number == 3
    assert slot.take(timeout=5) is None


def test_frame_pacer_keeps_the_rate_and_restarts_after_a_stall():
    now = [10.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = FramePacer(10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.wait()
        now[0] += 0.02  # the frame's work
    assert slept == [0.08, 0.08]
    now[0] += 1.0  # a stall: no burst of catch-up frames afterwards
    pacer.wait()
    pacer.wait()
    assert slept == [0.08, 0.08, 0.1]


def test_video_source_specs():
    assert isinstance(parse_video_source("synthetic:3", W, H, 15), SyntheticSource)
    camera = parse_video_source("camera:2", W, H, 15)
    assert isinstance(camera, CameraSource) and camera.index == 2
    screen = parse_video_source("screen:10,20,640,360", 1280, 720, 10)
    assert isinstance(screen, ScreenSource) and screen.region == (10, 20, 640, 360)
    assert parse_video_source("screen", W, H, 5).monitor == 1
    live = parse_video_source("file:udp://127.0.0.1:5000", W, H, 15)
    assert isinstance(live, FileSource) and live.live
    for bad in ("webcam", "camera:x", "screen:1,2,3", "file:", "screen:0,0,0,10"):
        with pytest.raises(ValueError):
            parse_video_source(bad, W, H, 15)


def test_missing_devices_fail_with_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="cannot open camera 57"):
        CameraSource(57, W, H, 15).open()
    with pytest.raises(SourceError, match="cannot open"):
        FileSource(str(tmp_path / "missing.mp4"), W, H).open()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        with pytest.raises(SourceError, match="screen"):
            ScreenSource(W, H, 10).open()


def write_y4m(path: Path, frames: int, fps: int = 25, size=(160, 120)) -> None:
    pattern = SyntheticPattern(*size)
    sink_track = RoomTrack(
        track_id=1,
        owner="x",
        kind="camera",
        codec="h264",
        width=size[0],
        height=size[1],
        fps=fps,
    )
    sink = Y4mSink(str(path))
    for n in range(frames):
        sink(sink_track, DecodedFrame(pattern.render(n, n), n, 0, False, 0.0))
    sink.close()


def test_a_file_plays_at_its_frame_rate_scaled_and_loops(tmp_path):
    clip = tmp_path / "clip.y4m"
    write_y4m(clip, 10, fps=25)
    source = FileSource(str(clip), W, H)
    assert not source.live
    source.open()
    try:
        assert source.fps == 25.0
        started = time.monotonic()
        frames = [source.read() for _ in range(15)]
        elapsed = time.monotonic() - started
    finally:
        source.close()
    assert frames[0].shape == (H, W, 3)
    # 15 frames at 25 fps, looping after the 10th: 14 frame intervals.
    assert 0.5 <= elapsed < 1.5, elapsed
    assert [read_stamp(f)[0] for f in frames] == [*range(10), *range(5)]


def test_a_named_pipe_is_live_and_read_as_it_arrives(tmp_path):
    fifo = tmp_path / "live.y4m"
    os.mkfifo(fifo)
    pattern = SyntheticPattern(160, 120)

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(y4m_header(160, 120, 25))
            for n in range(4):
                frame = DecodedFrame(pattern.render(n, n), n, 0, False, 0.0)
                out.write(b"FRAME\n" + _yuv420(frame, 160, 120))
                out.flush()
                time.sleep(0.15)

    writer = threading.Thread(target=feed)
    writer.start()
    source = FileSource(str(fifo), 160, 120)
    assert source.live
    source.open()
    arrivals = []
    numbers = []
    try:
        with pytest.raises(SourceError, match="ended"):
            while True:
                numbers.append(read_stamp(source.read())[0])
                arrivals.append(time.monotonic())
    finally:
        source.close()
        writer.join()
    assert numbers == [0, 1, 2, 3]
    gaps = np.diff(arrivals)
    assert all(gap > 0.08 for gap in gaps), gaps


def test_y4m_sink_writes_one_stream_per_track(tmp_path):
    sink = parse_sink(f"y4m:{tmp_path}/{{user}}-{{kind}}.y4m")
    for n in range(3):
        sink(track("alice"), picture(n))
        sink(track("bob", 8, "screen"), picture(n))
    # A later picture of another size is scaled to the stream's size.
    small = SyntheticPattern(160, 120).render(3, 0)
    sink(track("alice"), DecodedFrame(small, 3, 0, False, 0.0))
    sink.close()
    header, frames = read_y4m((tmp_path / "alice-camera.y4m").read_bytes())
    assert header == b"YUV4MPEG2 W320 H240 F15:1 Ip A1:1 C420jpeg"
    assert [len(f) for f in frames] == [W * H * 3 // 2] * 4
    assert len(read_y4m((tmp_path / "bob-screen.y4m").read_bytes())[1]) == 3
    assert [r["frames_written"] for r in sink.report()] == [4, 3]
    clash = Y4mSink(str(tmp_path / "same.y4m"))
    clash(track("alice"), picture(0))
    with pytest.raises(Exception, match="two tracks"):
        clash(track("bob", 8), picture(0))
    clash.close()
    with pytest.raises(ValueError):
        parse_sink("png:/tmp/x")


def test_y4m_sink_waits_for_a_pipe_reader_and_never_blocks_before(tmp_path):
    fifo = tmp_path / "alice.y4m"
    os.mkfifo(fifo)
    sink = Y4mSink(str(tmp_path / "{user}.y4m"))
    sink(track(), picture(0))
    assert sink.report()[0]["frames_skipped"] == 1
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as pipe:
            while chunk := pipe.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 5
    n = 1
    while sink.report()[0]["frames_written"] < 3 and time.monotonic() < deadline:
        sink(track(), picture(n))
        n += 1
        time.sleep(0.01)
    sink.close()
    reader.join(5)
    header, frames = read_y4m(bytes(received))
    assert header.startswith(b"YUV4MPEG2 W320 H240") and len(frames) == 3


def test_frame_saver_saves_every_nth_picture_as_png(tmp_path):
    saver = FrameSaver(tmp_path / "png", every=3)
    for n in range(7):
        saver(track(), picture(n))
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [f"alice-camera-7-{i:06d}.png" for i in (0, 3, 6)]
    image = np.asarray(Image.open(tmp_path / "png" / names[1]))
    assert read_stamp(image) == (3, 1003)
    with pytest.raises(ValueError):
        FrameSaver(tmp_path, every=0)


async def test_sender_drops_whole_frames_when_the_link_is_backed_up():
    loop = asyncio.get_running_loop()
    bursts: list[list[bytes]] = []
    refuse = {3, 4}

    def send(datagrams, keyframe) -> bool:
        if len(bursts) in refuse:
            refuse.discard(len(bursts))
            return False
        bursts.append(list(datagrams))
        return True

    source = SyntheticSource(160, 120, 30)
    sender = VideoSender(source, "camera", send, loop, min_keyframe_interval_s=0.0)
    sender.start()
    await sender.wait_started()
    sender.begin(42)
    await asyncio.sleep(0.5)
    sender.stop()
    await loop.run_in_executor(None, sender.join)
    stats = sender.stats_dict()
    assert stats["frames_dropped"] == 2
    assert stats["frames_sent"] == len(bursts) >= 8
    packets = [[parse_packet(d) for d in burst] for burst in bursts]
    assert {p.track_id for burst in packets for p in burst} == {42}
    keyframes = [burst[0].keyframe for burst in packets]
    # The first frame, and the first after each drop, is a keyframe.
    assert keyframes[0] and keyframes[3]
    assert stats["keyframes_sent"] == sum(keyframes)


async def test_sender_follows_its_budget_down_the_ladder_and_skips_when_paced_behind():
    loop = asyncio.get_running_loop()
    bursts: list[tuple[int, bool]] = []
    pacer_delay = [0.0]

    def send(datagrams, keyframe) -> bool:
        bursts.append((sum(len(d) for d in datagrams), keyframe))
        return True

    source = SyntheticSource(320, 240, 30)
    sender = VideoSender(
        source, "camera", send, loop, pacer_delay_s=lambda: pacer_delay[0]
    )
    # 320x240 at 30 fps needs about 58 kbit/s before the frame rate halves.
    sender.set_budget(40_000)
    sender.start()
    await sender.wait_started()
    sender.begin(42)
    await asyncio.sleep(0.6)
    quality = sender.quality
    assert quality is not None and quality.fps == 15 and quality.width == 320
    sent_at_half_rate = len(bursts)
    pacer_delay[0] = 1.0  # the pacer is a second behind: encode nothing
    await asyncio.sleep(0.3)
    stalled = len(bursts)
    sender.stop()
    await loop.run_in_executor(None, sender.join)
    stats = sender.stats_dict()
    assert stats["frames_skipped"] >= sent_at_half_rate / 2
    assert stalled - sent_at_half_rate <= 2
    assert stats["keyframes_sent"] == 1  # the rate changes cost no keyframe
    assert stats["target_bitrate_bps"] == 40_000


async def test_receiver_recovers_from_a_lost_frame_with_a_keyframe():
    loop = asyncio.get_running_loop()
    requests: list[int] = []
    shown: list[tuple[int, tuple[int, int] | None]] = []
    receiver = VideoReceiver(
        track(),
        loop,
        requests.append,
        [lambda t, f: shown.append((f.frame_number, read_stamp(f.image)))],
    )
    receiver.start()
    assert requests == [7]  # a new receiver asks for a keyframe at once
    pattern = SyntheticPattern(W, H)
    encoder = VideoEncoder(W, H, 15, 300_000, min_keyframe_interval_s=0.0)
    packetizer = VideoPacketizer(7)

    async def send_frame(n: int, *, lose: bool = False, keyframe: bool = False):
        (encoded,) = encoder.encode(pattern.render(n, n), n / 15, keyframe)
        for packet in packetizer.packetize(encoded.data, encoded.pts, encoded.keyframe):
            if not lose:
                receiver.push(parse_packet(packet.serialize()), loop.time())
        await asyncio.sleep(0.02)

    for n in range(5):
        await send_frame(n)
    await send_frame(5, lose=True)
    for n in range(6, 9):
        await send_frame(n)
    await asyncio.sleep(0.3)  # no NACKs here: frame 5 is given up, asked for
    assert requests == [7, 7]
    await send_frame(9, keyframe=True)
    await send_frame(10)
    await asyncio.sleep(0.3)
    receiver.stop()
    await loop.run_in_executor(None, receiver.join)
    # The render slot keeps the newest picture: 9 may be replaced by 10.
    assert shown[-1][0] == 10
    assert all(stamp is not None and stamp[0] == n for n, stamp in shown)
    assert not {5, 6, 7, 8} & {n for n, _ in shown}
    stats = receiver.stats_dict()
    assert stats["frames_lost"] == 1 and stats["packets_lost"] >= 1
    assert stats["keyframes_received"] == 2 and stats["keyframe_requests"] == 2
    assert stats["keyframe_requests_to_start"] == 1  # the other was for the loss
    assert stats["frames_rendered"] == len(shown)


async def test_receiver_nacks_a_lost_fragment_and_shows_every_frame():
    loop = asyncio.get_running_loop()
    requests: list[int] = []
    nacked: list[list[int]] = []
    shown: list[tuple[int, tuple[int, int] | None]] = []
    cache = RetransmitCache(copies=REPAIR_COPIES, min_interval_s=REPEAT_WINDOW_S)
    receiver = None

    def answer(track_id: int, seqs: list[int]) -> None:
        nacked.append(seqs)
        for data in cache.retransmit(track_id, seqs, loop.time()):
            loop.call_later(0.02, receiver.push, parse_packet(data), loop.time())

    receiver = VideoReceiver(
        track(),
        loop,
        requests.append,
        [lambda t, f: shown.append((f.frame_number, read_stamp(f.image)))],
        send_nack=answer,
        rtt_s=lambda: 0.04,
    )
    receiver.start()
    pattern = SyntheticPattern(W, H)
    encoder = VideoEncoder(W, H, 15, 300_000)
    packetizer = VideoPacketizer(7)
    for n in range(12):
        (encoded,) = encoder.encode(pattern.render(n, n), n / 15)
        packets = packetizer.packetize(encoded.data, encoded.pts, encoded.keyframe)
        for index, packet in enumerate(packets):
            data = packet.serialize()
            cache.put(7, packet.seq, data, loop.time())
            if n in (4, 8) and index == 0:
                continue  # lost on the way
            receiver.push(parse_packet(data), loop.time())
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.3)
    receiver.stop()
    await loop.run_in_executor(None, receiver.join)
    # Each NACK, and its copy 10 ms later unless the retransmission (20 ms)
    # came first; the sender does not answer a copy again. (A loop late by a
    # round trip may add a retry, answered as such.)
    lost = {seqs[0] for seqs in nacked}
    assert len(lost) == 2 and all(len(seqs) == 1 for seqs in nacked)
    assert 2 <= len(nacked) <= 8
    stats_of_cache = cache.stats
    assert stats_of_cache.retransmitted >= 2
    assert stats_of_cache.retransmitted + stats_of_cache.copies_ignored == len(nacked)
    assert [n for n, _ in shown] == list(range(12))
    assert all(stamp is not None and stamp[0] == n for n, stamp in shown)
    assert requests == [7]  # only the first keyframe, for starting
    stats = receiver.stats_dict()
    assert stats["packets_recovered"] == 2 and stats["packets_lost"] == 0
    assert stats["frames_lost"] == 0 and stats["nacks_sent"] == len(nacked)


class FakeScreen:
    """Stands in for mss: a 1920x1080 desktop of two monitors, BGRA."""

    monitors = [
        {"left": 0, "top": 0, "width": 3840, "height": 1080},
        {"left": 0, "top": 0, "width": 1920, "height": 1080},
        {"left": 1920, "top": 0, "width": 1920, "height": 1080},
    ]

    def __init__(self) -> None:
        self.grabbed: list[dict[str, int]] = []

    def grab(self, area: dict[str, int]) -> np.ndarray:
        self.grabbed.append(dict(area))
        shot = np.zeros((area["height"], area["width"], 4), np.uint8)
        shot[..., 2] = 255  # red, in BGRA
        return shot

    def close(self) -> None:
        pass


def test_screen_source_grabs_a_monitor_or_region_scaled(monkeypatch):
    import mss

    screens: list[FakeScreen] = []
    monkeypatch.setattr(mss, "MSS", lambda: screens.append(FakeScreen()) or screens[-1])
    source = ScreenSource(1280, 720, 20, monitor=2)
    source.open()
    frame = source.read()
    source.read()
    source.close()
    assert frame.shape == (720, 1280, 3) and tuple(frame[0, 0]) == (255, 0, 0)
    assert screens[0].grabbed[0] == FakeScreen.monitors[2]
    region = ScreenSource(640, 360, 20, region=(100, 50, 1280, 720))
    region.open()
    region.read()
    assert screens[1].grabbed == [
        {"left": 100, "top": 50, "width": 1280, "height": 720}
    ]
    with pytest.raises(SourceError, match="no monitor 3"):
        ScreenSource(1280, 720, 10, monitor=3).open()


def test_the_screen_track_bitrate_keeps_text_legible():
    from PIL import ImageDraw, ImageFont

    from client.media import default_bitrate_bps
    from codec.media.video import VideoDecoder

    page = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=14)
    for line in range(40):
        text = (
            f"line {line:02d}: the quick brown fox jumps over the lazy dog 0123456789"
        )
        draw.text((10, 5 + line * 17), text, fill="black", font=font)
    source = np.asarray(page)
    bitrate = default_bitrate_bps(1280, 720, 10, "screen")
    assert bitrate >= 2 * default_bitrate_bps(1280, 720, 10, "camera") - 1
    encoder = VideoEncoder(1280, 720, 10, bitrate)
    decoder = VideoDecoder()
    for n in range(20):  # two seconds of a still page
        (encoded,) = encoder.encode(source, n / 10)
        (shown,) = decoder.decode(encoded.data)
    error = np.mean((shown.astype(float) - source.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / error) > 35


async def test_sender_changes_bitrate_without_a_new_keyframe():
    loop = asyncio.get_running_loop()
    sizes: list[tuple[float, int]] = []

    def send(datagrams, keyframe) -> bool:
        payload = sum(len(parse_packet(d).payload) for d in datagrams)
        sizes.append((time.monotonic(), payload))
        return True

    sender = VideoSender(SyntheticSource(320, 240, 30), "camera", send, loop,
                         bitrate_bps=800_000)  # fmt: skip
    sender.start()
    await sender.wait_started()
    sender.begin(1)
    await asyncio.sleep(1.0)
    switched = time.monotonic()
    sender.set_bitrate(100_000)
    await asyncio.sleep(1.5)
    sender.stop()
    await loop.run_in_executor(None, sender.join)
    before = [size for at, size in sizes[1:] if at < switched]
    after = [size for at, size in sizes if at > switched + 0.8]
    assert len(before) >= 15 and len(after) >= 10
    assert np.mean(after) < 0.5 * np.mean(before)
    assert sender.stats.keyframes_sent == 1
