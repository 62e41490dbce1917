"""Mouth-to-ear latency on real devices, as the issue defines it: from the
capture callback to the playback callback, through a real server on
loopback, with the desktop app's audio path (each side's audio process).

A PulseAudio daemon of the benchmark's own has two null sinks: ``mouth``,
into which ``pacat`` plays a 200 ms buzz every second (the talker's
microphone records its monitor), and ``ear``, the listener's speaker. The
talker's audio process notes when each buzz begins in its capture callback
(the time the callback gives the frame's first sample), the listener's when
it begins in a block its playback callback writes; each playback onset
minus the capture onset before it is one mouth-to-ear sample. Both include
everything between the two callbacks: the capture chain, Opus, the rings,
QUIC and the server, the jitter buffer, the decoder and the mix; neither
device's own buffer.

    python bench/audio_mouth_to_ear.py [--seconds 20] [--buffer-ms MS]
        [--mic-buffer-ms MS]

Without ``--buffer-ms`` (``--mic-buffer-ms``) the speaker's (microphone's)
device buffer adapts as in the app: it starts short and steps up at an
underrun (overrun); the JSON gives each device's buffer at the end and the
steps.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
from _common import percentile, start_quicmeet_server  # noqa: I001

from client import Session
from client.media import Call
from client.media.audio_host import AudioHost, HostMicrophone
from client.media.audio_link import OpenDevice
from client.media.audio_sources import BEEP_S, buzz
from codec.media.audio import SAMPLE_RATE, pair_onsets

PASSWORD = "correct horse battery staple"
MOUTH, EAR = "mouth", "ear"


def start_pulse(runtime: Path) -> dict[str, str]:
    """A PulseAudio daemon with the two null sinks; returns the environment
    that reaches it."""
    if shutil.which("pulseaudio") is None:
        raise SystemExit("pulseaudio is not installed (.ci/run installs it)")
    socket = runtime / "native"
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "HOME": str(runtime)}
    subprocess.run(
        [
            "pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1",
            "--disallow-exit", "--use-pid-file=yes", "--log-target=stderr",
            f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
            f"--load=module-null-sink sink_name={MOUTH} rate=48000 channels=1",
            f"--load=module-null-sink sink_name={EAR} rate=48000 channels=1",
        ],
        env=env,
        check=True,
        timeout=30,
        capture_output=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not socket.exists():
        if time.monotonic() > deadline:
            raise SystemExit("pulseaudio did not start")
        time.sleep(0.05)
    return {**env, "PULSE_SERVER": f"unix:{socket}"}


def play_buzzes(env: dict[str, str], stop: threading.Event) -> None:
    """Write a buzz a second into the mouth sink, paced by ``pacat``'s own
    small buffer, until ``stop``."""
    second = np.zeros(SAMPLE_RATE, dtype=np.int16)
    beep = int(BEEP_S * SAMPLE_RATE)
    second[:beep] = buzz(beep)
    pacat = subprocess.Popen(
        [
            "pacat", "--playback", f"--device={MOUTH}", "--format=s16le",
            "--rate=48000", "--channels=1", "--latency-msec=20", "--raw",
        ],
        stdin=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert pacat.stdin is not None
    try:
        while not stop.is_set():
            pacat.stdin.write(second.astype("<i2").tobytes())
            pacat.stdin.flush()
    except BrokenPipeError:
        pass
    finally:
        pacat.stdin.close()
        pacat.terminate()
        pacat.wait()


async def measure(
    address: str,
    env: dict[str, str],
    seconds: float,
    buffer_s: float | None,
    mic_buffer_s: float | None,
) -> dict:
    sessions = []
    for name in ("talker", "listener"):
        session = Session(address)
        await session.connect()
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        sessions.append(session)
    await sessions[0].rooms.create()
    await sessions[1].rooms.join(sessions[0].rooms.room_id)
    talker_host = AudioHost(env={**env, "PULSE_SOURCE": f"{MOUTH}.monitor"})
    listener_host = AudioHost(env={**env, "PULSE_SINK": EAR})
    hosts = [talker_host, listener_host]
    calls = [Call(s) for s in sessions]
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    player = threading.Thread(target=play_buzzes, args=(env, stop), daemon=True)
    try:
        for host, call in zip(hosts, calls, strict=True):
            await loop.run_in_executor(None, host.start)
            call.start()
            call.audio.use_host(host)
        await loop.run_in_executor(
            None, listener_host.open_device, OpenDevice(True, "pulse", buffer_s)
        )
        # An idle null sink holds a new stream's first callbacks back for up
        # to its 2 s sleep (a real device does not): talk once it plays.
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and (
            listener_host.stats is None or listener_host.stats.speaker_s < 1.0
        ):
            await asyncio.sleep(0.1)
        await calls[0].audio.publish(HostMicrophone(talker_host, "pulse", mic_buffer_s))
        player.start()
        await asyncio.sleep(seconds)
        await asyncio.sleep(0.5)  # the last counters
        talked, heard = talker_host.stats, listener_host.stats
        assert talked is not None and heard is not None
        samples = pair_onsets(talked.capture_onsets, heard.play_onsets)
        received = calls[1].audio.stats()["audio_received"]
    finally:
        stop.set()
        for call in calls:
            await call.close()
        for host in hosts:
            await loop.run_in_executor(None, host.stop)
        for session in sessions:
            await session.close()
        player.join(5)
    track = received[0] if received else {}
    return {
        "speaker_buffer": "adaptive" if buffer_s is None else "fixed",
        "microphone_buffer": "adaptive" if mic_buffer_s is None else "fixed",
        "speaker_buffer_ms": heard.speaker_latency_ms,
        "microphone_buffer_ms": talked.microphone_latency_ms,
        "buffer_steps": [
            msgspec.structs.asdict(step)
            for step in (*heard.latency_steps, *talked.latency_steps)
        ],
        "first_ms": round(samples[0], 1) if samples else None,
        "buzzes_captured": len(talked.capture_onsets),
        "buzzes_played": len(heard.play_onsets),
        "samples": len(samples),
        "p50_ms": round(percentile(samples, 50), 1) if samples else None,
        "p95_ms": round(percentile(samples, 95), 1) if samples else None,
        "max_ms": round(max(samples), 1) if samples else None,
        "samples_ms": [round(sample, 1) for sample in samples],
        "jitter_buffer_target_ms": track.get("target_delay_ms"),
        "packets_lost": track.get("packets_lost"),
        "speaker_underruns": heard.underruns,
        "microphone_overruns": talked.overruns,
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def mouth_to_ear(
    seconds: float, buffer_s: float | None = None, mic_buffer_s: float | None = None
) -> dict:
    """Run the whole measurement (its own PulseAudio and server)."""
    server = start_quicmeet_server()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Path(tmp)
        env = start_pulse(runtime)
        try:
            return asyncio.run(
                measure(server.address, env, seconds, buffer_s, mic_buffer_s)
            )
        finally:
            server.stop()
            pid = (runtime / "pid").read_text().split()[0]
            os.kill(int(pid), 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--buffer-ms",
        type=float,
        help="fix the speaker's device buffer (default: adaptive)",
    )
    parser.add_argument(
        "--mic-buffer-ms",
        type=float,
        help="fix the microphone's device buffer (default: adaptive)",
    )
    args = parser.parse_args()
    speaker_s = None if args.buffer_ms is None else args.buffer_ms / 1000.0
    mic_s = None if args.mic_buffer_ms is None else args.mic_buffer_ms / 1000.0
    result = mouth_to_ear(args.seconds, speaker_s, mic_s)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
