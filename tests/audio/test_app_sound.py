"""The desktop app's meeting sound as the engine runs it (``MeetingAudio``),
on a real call over loopback and PulseAudio's null sink: the Mic button's
publish and mute, devices switched when the settings change during the
meeting, a device that does not open, an audio process that dies; the
settings' sound check."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from client.engine.audio_model import InputLevel
from client.engine.backend.meeting_audio import AudioSettings, MeetingAudio
from client.engine.backend.sound_check import SoundCheck
from client.engine.model import Notice
from client.errors import ClientError
from client.media import AudioUnavailable
from client.media.audio_host import HostMicrophone
from client.media.audio_sources import ToneSource
from tests.audio.test_meeting_audio import join
from tests.conftest import address, eventually


async def test_microphone_and_devices_follow_the_settings(pulse_devices, server):
    settings = AudioSettings(microphone="tone", speaker="pulse")
    posted: list[object] = []
    changes: list[bool] = []
    audio = MeetingAudio(posted.append, lambda: settings, lambda: changes.append(True))
    session, call = await join(address(server), "alice", None)
    try:
        await audio.attach(call)
        host = call.audio.host
        assert audio.problem == "" and host is not None and host.device_open(True)
        assert call.audio.sink is None
        # Lip sync counts from when a frame is heard: after the device buffer
        # that the audio process reports (40 ms to start with: it adapts).
        assert 0.02 <= host.latency_s[True] <= 1.0
        assert not audio.microphone_on and call.audio.sender is None

        await audio.set_microphone(True)
        assert audio.microphone_on and isinstance(call.audio.sender.source, ToneSource)
        await audio.set_microphone(False)
        assert not audio.microphone_on and call.audio.sender.muted
        assert session.rooms.state.members[0].muted

        settings = AudioSettings(microphone="pulse", speaker="nope")
        await audio.apply_settings()
        assert isinstance(call.audio.sender.source, HostMicrophone)
        assert host.device_open(False)
        assert "no speaker named 'nope'" in audio.problem
        assert not host.device_open(True)

        settings = AudioSettings(microphone="pulse", speaker="pulse")
        await audio.apply_settings()
        assert audio.problem == "" and host.device_open(True)
        assert changes

        with pytest.raises(ClientError, match="a volume is 0 to 200 %, not 250"):
            audio.set_volume("bob", 250)

        # The audio process dies: the user is told, and it plays again.
        os.kill(host.pid, signal.SIGKILL)
        await eventually(lambda: host.restarts == 1, timeout=20)
        await eventually(lambda: any(isinstance(e, Notice) for e in posted))
        notice = next(e for e in posted if isinstance(e, Notice))
        assert "audio process stopped" in notice.text
        await eventually(lambda: (host.report()["speaker_s"] or 0) > 0, timeout=30)
    finally:
        await audio.detach()
        await call.close()
        await session.close()
    # The meeting's end stopped (and reaped) the audio process.
    assert host.pid is None


async def test_sound_is_not_off_while_the_speaker_opens(pulse_devices, server):
    # The audio process takes seconds to start on a busy machine or a fresh
    # install: the window must not say "No sound" for a speaker about to play.
    settings = AudioSettings(speaker="pulse")
    audio = MeetingAudio(lambda event: None, lambda: settings, lambda: None)
    session, call = await join(address(server), "alice", None)
    seen: set[str] = set()
    try:
        attaching = asyncio.create_task(audio.attach(call))
        while not attaching.done():
            seen.add(audio.problem)
            await asyncio.sleep(0.001)
        await attaching
        assert seen == {""}
        assert call.audio.host is not None and call.audio.host.device_open(True)
        settings = AudioSettings(speaker="none")
        await audio.apply_settings()
        assert audio.problem == "the speaker is off"
    finally:
        await audio.detach()
        await call.close()
        await session.close()


async def test_sound_check_lists_meters_and_refuses_missing_devices(pulse_devices):
    posted: list[object] = []
    check = SoundCheck(posted.append)
    try:
        devices = await check.devices()
        assert devices.problem == "" and "pulse" in devices.inputs
        assert "pulse" in devices.outputs

        await check.watch_input("nope")
        assert posted == [
            InputLevel("nope", -127.0, "audio is off: no microphone named 'nope'")
        ]
        with pytest.raises(AudioUnavailable, match="no speaker named 'nope'"):
            await check.play_tone("nope")

        # The tone on the null sink comes back on its monitor, the meter's input.
        posted.clear()
        await check.watch_input("pulse")
        await eventually(lambda: len(posted) >= 3, timeout=10)
        assert max(e.level_dbov for e in posted) < -60
        await check.play_tone("pulse")
        await eventually(lambda: any(e.level_dbov > -30 for e in posted), timeout=10)
        assert all(e.device == "pulse" and e.problem == "" for e in posted)
    finally:
        await check.close()
