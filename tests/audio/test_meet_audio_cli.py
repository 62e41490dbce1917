"""``quicmeet-cli meet --audio ... --play ...`` as scripts use it: two child
processes and a real server process; the stamped tone's mouth-to-ear latency
in the stats, speech in the WAV that a listener wrote, bad specs refused."""

from __future__ import annotations

import asyncio
import json
import signal

import numpy as np

from client.media import read_wav
from tests.audio.speech import SENTENCES, espeak, find, write_wav
from tests.cli import run, spawn, stop
from tests.conftest import server_process  # noqa: F401  (fixture)


async def test_two_cli_members_talk_and_measure(server_process, tmp_path):  # noqa: F811
    server = server_process
    homes = {name: tmp_path / name for name in ("alice", "bob")}
    for name, home in homes.items():
        assert run(server, home, "register", name).returncode == 0
    speech = espeak(SENTENCES["bob"], tmp_path / "tts.wav")
    lead = np.zeros(24_000, dtype=np.int16)
    write_wav(tmp_path / "bob.wav", np.concatenate([lead, speech]))
    loop = asyncio.get_running_loop()
    alice = spawn(
        server, homes["alice"], "--json", "meet", "--create", "--video", "none",
        "--audio", "tone", "--play", f"wav:{tmp_path}/alice-heard.wav",
        "--stats", str(tmp_path / "alice.json"),
    )  # fmt: skip
    procs = [alice]
    try:
        first = await loop.run_in_executor(None, alice.stdout.readline)
        room_id = json.loads(first)["room"]["room_id"]
        bob = spawn(
            server, homes["bob"], "meet", "--room", room_id, "--video", "none",
            "--audio", f"wav:{tmp_path}/bob.wav",
            "--play", f"wav:{tmp_path}/bob-heard.wav",
            "--duration", "4", "--stats", str(tmp_path / "bob.json"),
        )  # fmt: skip
        procs.append(bob)
        code = await loop.run_in_executor(None, bob.wait, 60)
        assert code == 0, bob.stderr.read()
        await asyncio.sleep(0.5)  # bob's last words are still on their way
        alice.send_signal(signal.SIGTERM)
        code = await loop.run_in_executor(None, alice.wait, 60)
        assert code == 0, alice.stderr.read()
    finally:
        for proc in procs:
            stop(proc)
    bob_stats = json.loads((tmp_path / "bob.json").read_text())
    alice_stats = json.loads((tmp_path / "alice.json").read_text())
    from_alice = bob_stats["audio_received"][0]
    assert from_alice["user"] == "alice"
    # The tone buzzes once a second; bob heard most of them, each stamped.
    latency = from_alice["stamped_latency_ms"]
    assert latency["count"] >= 2, from_alice
    assert 0 < latency["p50"] < 800
    assert from_alice["frames_played"] >= 20
    sent = alice_stats["audio_sent"]
    # 200 ms of buzz a second: DTX keeps well under all frames.
    assert sent["packets_sent"] < 0.6 * sent["frames_captured"]
    score, waveform = find(speech, read_wav(tmp_path / "alice-heard.wav"))
    assert score > 0.8 and waveform > 0.5, (score, waveform)


def test_a_missing_device_turns_audio_off_and_the_meeting_runs(
    server_process,  # noqa: F811
    tmp_path,
):
    home = tmp_path / "erin"
    assert run(server_process, home, "register", "erin").returncode == 0
    nodevice = run(
        server_process, home, "meet", "--create", "--video", "none",
        "--audio", "mic:no-such-mic", "--play", "speaker:no-such-speaker",
        "--duration", "1",
    )  # fmt: skip
    assert nodevice.returncode == 0, nodevice.stderr
    assert "audio is off: no speaker named 'no-such-speaker'" in nodevice.stderr
    assert "audio is off: no microphone named 'no-such-mic'" in nodevice.stderr
