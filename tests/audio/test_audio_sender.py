"""The audio sender's capture thread answers every request the loop makes of
it, however they interleave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.media.audio_sender import AudioSender
from client.media.audio_sources import SilenceSource, ToneSource, WavSource
from client.media.errors import SourceError


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
