"""The audio process on PulseAudio's null sink: it plays a track the engine
feeds it and captures it back; it says why a device will not open; a process
that dies is restarted with its devices and tracks; stopping it, or killing
the engine that started it, leaves no process and no shared memory; a
malformed record from the engine is skipped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from client.media import AudioUnavailable, SourceError
from client.media.audio_host import AudioHost, HostMicrophone
from client.media.audio_link import AddTrack, OpenDevice, decode_up, encode, split_rings
from client.media.audio_process import AudioProcess
from client.media.audio_sources import buzz
from client.media.lip_sync import LipSync
from codec.media import AudioPacket
from codec.media.audio import FRAME_SAMPLES, SPEAKER_LADDER_S, OpusEncoder
from codec.messages import RoomTrack

from .test_devices import spectrum_peak

TRACK = RoomTrack(track_id=7, owner="bob", kind="microphone", codec="opus")


def wait_for(check, timeout: float = 20.0, what: str = "it"):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    return status != "Z"


@contextlib.contextmanager
def speaker_playing() -> Iterator[AudioHost]:
    """An audio process with its speaker open on the null sink; stopped after."""
    host = AudioHost()
    host.start()
    try:
        host.open_device(OpenDevice(True, "pulse", None))
        yield host
    finally:
        host.stop()


def feed_buzz(host: AudioHost, seconds: float) -> None:
    """Send ``seconds`` of Opus-encoded buzz as bob's track, paced as a
    network would deliver it."""
    encoder = OpusEncoder()
    start = time.time()
    try:
        for n in range(int(seconds * 50)):
            due = start + n * 0.02
            time.sleep(max(0.0, due - time.time()))
            frame = buzz(FRAME_SAMPLES, n * FRAME_SAMPLES) // 2
            packet = AudioPacket(
                track_id=TRACK.track_id,
                seq=n,
                transport_seq=0,
                timestamp=n * FRAME_SAMPLES,
                level=30,
                voice_activity=True,
                payload=encoder.encode(frame),
            )
            host.push(packet, time.time())
    finally:
        encoder.close()


def test_plays_a_track_and_captures_it_back(pulse_devices) -> None:
    with speaker_playing() as host:
        microphone = HostMicrophone(host, "pulse", None, clean=False)
        microphone.open()
        host.add_track(TRACK, LipSync())
        heard: list[np.ndarray] = []
        capturing = threading.Event()

        def read() -> None:
            # A loaded machine may hold the first frames back for a second.
            deadline = time.monotonic() + 15
            while len(heard) < 100 and time.monotonic() < deadline:
                with contextlib.suppress(SourceError):
                    heard.append(microphone.read()[0])
                    capturing.set()

        reader = threading.Thread(target=read)
        reader.start()
        # A capture on a null sink's monitor starts up to 2 s late (the sink
        # sleeps in 2 s blocks while idle): the buzz starts once it runs, so that
        # the 2 s read is the buzz, not the decoder's concealment after it
        # (which drifts in pitch: 191 Hz for this 150 Hz buzz in CI).
        assert capturing.wait(15), "the microphone delivered nothing"
        feed_buzz(host, 2.0)
        reader.join(20)
        microphone.close()
        wait_for(
            lambda: host.track_stats(TRACK.track_id).get("packets_received") == 100,
            what="the track's counters",
        )
        track = host.track_stats(TRACK.track_id)
        assert cast_float(track["frames_played"]) > 25, track
        report = host.report()
        assert cast_float(report["speaker_s"]) > 1.0, report
    # The last second: the buzz has long reached the speaker.
    loud = np.concatenate(heard[-50:])
    assert np.sqrt(np.mean(loud.astype(float) ** 2)) > 300
    assert abs(spectrum_peak(loud) - 150) < 5


def test_a_microphone_on_an_idle_null_sinks_monitor_is_waited_for(pulse_devices):
    # A null sink nobody plays to sleeps in 2 s blocks: a capture on its
    # monitor, opened just after the sink was made, gets its first frame
    # only when that block ends, more than 1 s after the stream opened.
    host = AudioHost(env={**os.environ, "PULSE_SOURCE": "quicmeet_idle.monitor"})
    host.start()
    module = subprocess.run(
        ["pactl", "load-module", "module-null-sink", "sink_name=quicmeet_idle"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    microphone = HostMicrophone(host, "pulse", None, clean=False)
    try:
        microphone.open()
        frames = [microphone.read() for _ in range(10)]
        microphone.close()
    finally:
        host.stop()
        subprocess.run(["pactl", "unload-module", module], check=True, timeout=10)
    assert len(frames) == 10


def test_the_played_level_is_the_loudest_since_it_was_last_read(
    pulse_devices,
) -> None:
    # The tile's line reads it once a second; the process reports a level
    # per 250 ms: a buzz followed by a second of silence still shows.
    with speaker_playing() as host:
        host.add_track(TRACK, LipSync())
        feed_buzz(host, 0.4)

        def track() -> dict[str, object]:
            # The raw last report: track_stats() would start a new period.
            stats = host.stats
            return {} if stats is None else stats.tracks.get(TRACK.track_id, {})

        wait_for(
            lambda: (
                track().get("packets_received") == 20
                and cast_float(track()["frames_played"]) > 0
            ),
            what="the buzz played",
        )
        # Long past the jitter buffer's delay: six periods of silence.
        time.sleep(1.5)
        level = cast_float(host.track_stats(TRACK.track_id)["played_dbov"])
        assert level > -40, level
        # Reading started a new period: silence since.
        time.sleep(0.6)
        assert host.track_stats(TRACK.track_id)["played_dbov"] == -127.0


def cast_float(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def test_a_starved_speaker_counts_the_underrun_steps_its_buffer_up_and_plays_on(
    pulse_devices, capfd
) -> None:
    # A busy machine starves the audio process: stopped for 0.6 s, its
    # speaker's buffer (40 ms to start with) runs dry. ALSA's pulse device
    # used to report that to PortAudio as an xrun, and PortAudio then
    # stalled the stream for about 1.5 s; now PulseAudio plays silence, the
    # speaker counts the gap and opens its device again with a longer buffer.
    with speaker_playing() as host:
        warm = wait_for(
            lambda: (
                (r := host.report())["speaker_s"] is not None
                and cast_float(r["speaker_s"]) >= 3.0
                and r
            ),
            what="the speaker past its warm-up",
        )
        # Usually still on the first rung; a busy machine may have stepped
        # already, and a step goes up from wherever the buffer is.
        before = cast_float(warm["speaker_latency_ms"])
        assert before >= SPEAKER_LADDER_S[0] * 1000.0
        earlier = len(cast(list[object], warm["latency_steps"]))
        pid = host.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.6)
        os.kill(pid, signal.SIGCONT)
        stepped = wait_for(
            lambda: (
                len(cast(list[object], (r := host.report())["latency_steps"])) > earlier
                and cast_float(r["underflows"]) > cast_float(warm["underflows"])
                and r
            ),
            what="the underrun counted and the buffer stepped up",
        )
        step = cast(list[dict[str, object]], stepped["latency_steps"])[earlier]
        assert step["output"] is True and step["reason"] == "glitch"
        assert step["from_ms"] == before
        assert cast_float(step["to_ms"]) > before
        assert cast_float(stepped["speaker_latency_ms"]) >= cast_float(step["to_ms"])
        resumed = cast_float(host.report()["speaker_s"])
        wait_for(
            lambda: cast_float(host.report()["speaker_s"]) > resumed + 1.0,
            what="the speaker to play on",
        )
        assert host.restarts == 0
    assert "underrun occurred" not in capfd.readouterr().err


def test_a_device_that_will_not_open_says_why(pulse_devices) -> None:
    host = AudioHost()
    host.start()
    try:
        with pytest.raises(AudioUnavailable, match="no speaker named 'nope'"):
            host.open_device(OpenDevice(True, "nope", None))
        assert not host.device_open(True)
        # The process goes on: a good device opens after a bad one.
        host.open_device(OpenDevice(True, "pulse", None))
        assert host.device_open(True)
        assert host.restarts == 0
    finally:
        host.stop()


def test_the_cancellers_library_is_loaded_before_the_speaker_plays(
    pulse_devices,
) -> None:
    # Its import is 60-250 ms under the GIL: done when the microphone opened,
    # a playing speaker's callback on a busy machine waited up to 98 ms.
    with speaker_playing() as host:
        assert host.pid is not None
        # livekit's import loads protobuf's C extension, which nothing else
        # in the audio process uses (its own library loads with the first
        # canceller, in under 10 ms).
        maps = Path(f"/proc/{host.pid}/maps").read_text()
        assert "google/_upb/" in maps


def test_a_dead_audio_process_is_restarted_with_its_devices(pulse_devices) -> None:
    problems: list[str] = []
    host = AudioHost(problems.append)
    host.start()
    try:
        host.open_device(OpenDevice(True, "pulse", None))
        host.add_track(TRACK, LipSync())
        first = host.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: host.restarts == 1, what="the restart")
        assert "audio process stopped" in problems[0], problems
        assert host.pid not in (None, first)
        assert not alive(first)
        # The new process opened the speaker again and plays the track.
        before = cast_float(wait_for(lambda: host.report()["speaker_s"]))
        feed_buzz(host, 1.0)
        wait_for(
            lambda: cast_float(host.report()["speaker_s"]) > before,
            what="the new process's speaker to play",
        )
        wait_for(
            lambda: host.track_stats(TRACK.track_id).get("packets_received"),
            what="the track again",
        )
    finally:
        host.stop()


def test_stop_leaves_no_process_and_no_shared_memory(pulse_devices) -> None:
    host = AudioHost()
    host.start()
    pid = host.pid
    assert pid is not None
    block = host.block_name
    assert Path("/dev/shm", block).exists()
    host.open_device(OpenDevice(True, "pulse", None))
    host.stop()
    assert not alive(pid)
    assert not Path("/dev/shm", block).exists()


ENGINE = textwrap.dedent(
    """
    import sys, time
    from client.media.audio_host import AudioHost
    from client.media.audio_link import OpenDevice
    host = AudioHost()
    host.start()
    host.open_device(OpenDevice(True, "pulse", None))
    print(host.pid, flush=True)
    time.sleep(60)
    """
)


def test_an_engine_killed_leaves_no_audio_process(pulse_devices) -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE], stdout=subprocess.PIPE, text=True
    )
    try:
        assert engine.stdout is not None
        pid = int(engine.stdout.readline())
        assert alive(pid)
        engine.kill()
        engine.wait()
        wait_for(lambda: not alive(pid), timeout=10, what="the audio process to exit")
    finally:
        engine.kill()
        engine.wait()


def test_a_malformed_record_is_counted_and_skipped() -> None:
    block = memoryview(bytearray(1 << 16))
    down, up = split_rings(block, 1 << 15, reset=True)
    process = AudioProcess(down, up)
    assert down.write(b"\xc1 not msgpack")
    assert down.write(encode(AddTrack(TRACK.track_id, TRACK.owner)))
    stop = threading.Event()
    runner = threading.Thread(target=process.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: TRACK.track_id in process.receivers, what="the track")
        assert process.malformed == 1
        # Its counters come up the other ring.
        stats = wait_for(lambda: up.read(), what="the counters")
        assert TRACK.track_id in decode_up(stats).tracks
    finally:
        stop.set()
        runner.join()
