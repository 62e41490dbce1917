"""The desktop app's meeting sound as the engine runs it (``MeetingAudio``),
on a real call over loopback and PulseAudio's null sink: the Mic button's
publish and mute, devices switched when the settings change during the
meeting, and a device that does not open."""

from __future__ import annotations

import pytest

from client.engine.backend.meeting_audio import AudioSettings, MeetingAudio
from client.errors import ClientError
from client.media.audio_sources import MicSource, ToneSource
from tests.audio.test_meeting_audio import join
from tests.conftest import address


async def test_microphone_and_devices_follow_the_settings(pulse_devices, server):
    settings = AudioSettings(microphone="tone", speaker="pulse")
    posted: list[object] = []
    changes: list[bool] = []
    audio = MeetingAudio(posted.append, lambda: settings, lambda: changes.append(True))
    session, call = await join(address(server), "alice", None)
    try:
        await audio.attach(call)
        assert audio.problem == "" and call.audio.sink is not None
        assert not audio.microphone_on and call.audio.sender is None

        await audio.set_microphone(True)
        assert audio.microphone_on and isinstance(call.audio.sender.source, ToneSource)
        await audio.set_microphone(False)
        assert not audio.microphone_on and call.audio.sender.muted
        assert session.rooms.state.members[0].muted

        settings = AudioSettings(microphone="pulse", speaker="nope")
        await audio.apply_settings()
        assert isinstance(call.audio.sender.source, MicSource)
        assert "no speaker named 'nope'" in audio.problem
        assert call.audio.sink is None

        settings = AudioSettings(microphone="pulse", speaker="pulse")
        await audio.apply_settings()
        assert audio.problem == "" and call.audio.sink is not None
        assert changes

        with pytest.raises(ClientError, match="a volume is 0 to 200 %, not 250"):
            audio.set_volume("bob", 250)
    finally:
        await audio.detach()
        await call.close()
        await session.close()
