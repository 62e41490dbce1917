"""Lip sync end to end over real QUIC on loopback: a member sends the
stamped buzz and synthetic camera video on one capture clock; the listener
plays the audio (a WAV sink on its own clock) and shows each picture with
the sound captured with it."""

from __future__ import annotations

from pathlib import Path

from client.media import SyntheticSource, ToneSource, WavSink
from client.media.lip_sync import LipSync
from codec.media.audio import SAMPLE_RATE
from codec.media.audio.sync import VIDEO_CLOCK_HZ
from tests.audio.test_meeting_audio import join
from tests.conftest import address, eventually


async def test_pictures_are_shown_with_their_sound(server, tmp_path: Path):
    alice_session, alice = await join(address(server), "alice", None)
    room = alice_session.rooms.room_id
    bob_session, bob = await join(
        address(server), "bob", room, audio_sink=WavSink(tmp_path / "heard.wav")
    )
    try:
        await alice.publish_video(SyntheticSource(320, 240, 15), "camera")
        await alice.audio.publish(ToneSource())

        def synced() -> dict | None:
            video = [r.stats_dict() for r in bob.receivers.values()]
            offsets = video[0].get("av_offset_ms") if video else None
            return offsets if offsets and offsets["samples"] >= 40 else None

        await eventually(lambda: synced() is not None, timeout=20)
        offsets = synced()
        assert offsets is not None
        assert abs(offsets["median"]) <= 40, offsets
        heard = bob.stats()["audio_received"][0]
        assert heard["av_offset_ms"]["samples"] >= 40
    finally:
        for call, session in ((bob, bob_session), (alice, alice_session)):
            await call.close()
            await session.close()


def test_pictures_wait_for_the_sound_to_leave_the_device():
    """A speaker's buffer delays what is heard after the pull: a picture
    captured with a speech frame waits that much longer."""
    sync = LipSync()
    sync.audio_played(100 * SAMPLE_RATE, heard_after_s=0.1)
    wait = sync.render_in_s(100 * VIDEO_CLOCK_HZ)
    assert 0.08 <= wait <= 0.1
