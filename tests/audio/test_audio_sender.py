"""The audio sender's capture thread answers every request the loop makes of
it, however they interleave; a talk spurt after DTX's silence starts with
the frames held back before the VAD heard it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from client.media.audio_sender import AudioSender
from client.media.audio_sources import SilenceSource, ToneSource, WavSource, buzz
from client.media.errors import SourceError
from codec.media import AudioPacket, parse_packet
from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

from .speech import write_wav


async def test_switches_made_back_to_back_are_each_answered(tmp_path: Path) -> None:
    sent: list[bytes] = []
    sender = AudioSender(
        SilenceSource(), lambda datagrams: sent.extend(datagrams) or True,
        asyncio.get_running_loop(),
    )  # fmt: skip
    sender.start()
    await sender.wait_started()
    sender.begin(1)
    try:
        # Both waiting at once: one slot for requests lost one of them.
        missing, tone = await asyncio.wait_for(
            asyncio.gather(
                sender.switch_source(WavSource(tmp_path / "missing.wav")),
                sender.switch_source(ToneSource()),
                return_exceptions=True,
            ),
            5,
        )
        assert isinstance(missing, SourceError) and tone is None
        assert isinstance(sender.source, ToneSource)
        sender.set_bitrate(24_000)
        await asyncio.sleep(0.1)
        assert sender.bitrate_bps == 24_000
    finally:
        await sender.halt()
    # Once the thread has ended, a switch is refused, not left waiting.
    with pytest.raises(SourceError, match="stopped"):
        await asyncio.wait_for(sender.switch_source(ToneSource()), 5)


async def test_a_talk_spurt_goes_out_with_its_onset(tmp_path: Path) -> None:
    # Silence, then a buzz that fades in over 60 ms: the VAD hears it only
    # once it is loud, after its first frames went by as silence.
    silence = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
    tone = buzz(SAMPLE_RATE // 2).astype(float)
    tone[: 3 * FRAME_SAMPLES] *= np.linspace(0.0, 1.0, 3 * FRAME_SAMPLES)
    write_wav(tmp_path / "talk.wav", np.concatenate([silence, tone.astype(np.int16)]))
    sent: list[bytes] = []
    sender = AudioSender(
        WavSource(tmp_path / "talk.wav"),
        lambda datagrams: sent.extend(datagrams) or True,
        asyncio.get_running_loop(),
    )
    sender.start()
    await sender.wait_started()
    sender.begin(1)
    try:
        await asyncio.sleep(1.3)
    finally:
        await sender.halt()
    packets = [parse_packet(d) for d in sent]
    assert all(isinstance(p, AudioPacket) for p in packets)
    onset = next(i for i, p in enumerate(packets) if p.voice_activity)  # type: ignore[union-attr]
    first, second, voiced = packets[onset - 2 : onset + 1]
    # Two frames held back, sent first: consecutive numbers and timestamps,
    # after a gap of silence that was not sent.
    assert [p.seq for p in (first, second, voiced)] == [
        first.seq, first.seq + 1, first.seq + 2,
    ]  # fmt: skip
    assert second.timestamp - first.timestamp == FRAME_SAMPLES
    assert voiced.timestamp - second.timestamp == FRAME_SAMPLES
    assert not first.voice_activity and not second.voice_activity
    before = packets[onset - 3]
    assert first.timestamp - before.timestamp > FRAME_SAMPLES
    assert sender.stats.frames_preroll >= 2
