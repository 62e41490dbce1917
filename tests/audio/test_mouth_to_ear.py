"""Mouth-to-ear on real devices, coarsely: buzzes played into a second null
sink are captured by the talker's audio process, cross a real server on
loopback and come out of the listener's audio process's playback callback,
each under 800 ms and most under 400: typically 70 ms here, so the bounds
leave room for a machine many times slower (the benchmark,
``bench/audio_mouth_to_ear.py``, measures how well). A first buzz once took
433 ms while the next ones took 69: one packet held up at the start set the
jitter buffer's first target (``tests/codec/media/test_audio_cores.py``
pins that down on a virtual clock). The test waits for buzzes that pair
up, not for buzzes heard: once a first buzz came 785 ms late (beyond the
pairing window) and the talker's stats, sent a beat behind the listener's,
did not yet hold the capture of the fourth buzz heard."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading

import numpy as np
import pytest

from client.media.audio_host import AudioHost, HostMicrophone
from client.media.audio_link import OpenDevice
from client.media.audio_sources import BEEP_S, buzz
from codec.media.audio import SAMPLE_RATE, pair_onsets
from tests.audio.test_meeting_audio import join
from tests.conftest import address

MOUTH = "quicmeet_mouth"


@pytest.fixture
def mouth(pulse_devices):
    """A second null sink, the talker's "mouth", with a buzz a second."""
    module = subprocess.run(
        ["pactl", "load-module", "module-null-sink", f"sink_name={MOUTH}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    second = np.zeros(SAMPLE_RATE, dtype=np.int16)
    second[: int(BEEP_S * SAMPLE_RATE)] = buzz(int(BEEP_S * SAMPLE_RATE))
    pacat = subprocess.Popen(
        [
            "pacat", "--playback", f"--device={MOUTH}", "--format=s16le",
            "--rate=48000", "--channels=1", "--latency-msec=20", "--raw",
        ],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    stop = threading.Event()

    def play() -> None:
        assert pacat.stdin is not None
        while not stop.is_set():
            try:
                pacat.stdin.write(second.tobytes())
                pacat.stdin.flush()
            except (BrokenPipeError, ValueError):
                return

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        yield MOUTH
    finally:
        stop.set()
        pacat.kill()
        pacat.wait()
        player.join(5)
        subprocess.run(["pactl", "unload-module", module], check=True, timeout=10)


async def test_buzzes_go_from_capture_callback_to_playback_callback(mouth, server):
    talker_session, talker = await join(address(server), "talker", None)
    room = talker_session.rooms.room_id
    listener_session, listener = await join(address(server), "listener", room)
    talker_host = AudioHost(env={**os.environ, "PULSE_SOURCE": f"{mouth}.monitor"})
    listener_host = AudioHost()
    loop = asyncio.get_running_loop()
    try:
        for host, call in ((talker_host, talker), (listener_host, listener)):
            await loop.run_in_executor(None, host.start)
            call.audio.use_host(host)
        await loop.run_in_executor(
            None, listener_host.open_device, OpenDevice(True, "pulse", None)
        )
        await talker.audio.publish(HostMicrophone(talker_host, "pulse", None))
        for _ in range(200):
            await asyncio.sleep(0.1)
            talked, heard = talker_host.stats, listener_host.stats
            if (
                talked
                and heard
                and len(pair_onsets(talked.capture_onsets, heard.play_onsets)) >= 4
            ):
                break
    finally:
        await talker.close()
        await listener.close()
        for host in (talker_host, listener_host):
            await loop.run_in_executor(None, host.stop)
        await talker_session.close()
        await listener_session.close()
    assert talked is not None and heard is not None
    latencies = pair_onsets(talked.capture_onsets, heard.play_onsets)
    assert len(latencies) >= 3, (talked.capture_onsets, heard.play_onsets)
    assert all(0 < ms < 800 for ms in latencies), latencies
    assert sorted(latencies)[len(latencies) // 2] < 400, latencies
