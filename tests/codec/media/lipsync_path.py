"""One remote person's audio and video through netsim links on a virtual
clock, played out with the jitter buffer and shown with lip sync: what
``tests/codec/media/test_lip_sync.py`` asserts and ``bench/lipsync.py``
measures.

The publisher's capture clock starts at ``epoch_s`` (its call began then);
the receiver's clock is ``clock_offset_s`` ahead of the publisher's. Audio:
20 ms frames in talk spurts (``talk_s`` of speech, ``pause_s`` of silence:
a 120 ms hangover, then DTX keep-alives, as the sender does). Video:
``fps`` frames, each ready ``decode_s`` after it arrived. Time advances in 1 ms steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE, AvSync, JitterBuffer
from codec.media.audio.sync import VIDEO_CLOCK_HZ
from netsim import Link, LinkConfig

__all__ = ["SyncRun", "run_lip_sync"]

_FRAME_MS = 1000 * FRAME_SAMPLES // SAMPLE_RATE
_HANGOVER_S = 0.12
"""As the sender's DTX gate: frames without the V bit after each spurt."""


@dataclass
class SyncRun:
    """What one run showed, after the warm-up: ``offsets_ms`` of the pictures
    rendered while their audio was speech, against the moment that audio
    really played (ms, positive: picture late; found afterwards from the
    played frames, not from the sync's own estimate, which ``reported_ms``
    holds), and the audio's final target."""

    offsets_ms: list[float] = field(default_factory=list)
    reported_ms: list[float] = field(default_factory=list)
    rendered: int = 0
    audio_target_ms: float = 0.0
    video_held_ms: list[float] = field(default_factory=list)


def run_lip_sync(
    link: LinkConfig,
    seconds: float,
    *,
    decode_s: float = 0.01,
    fps: float = 30.0,
    talk_s: float = 1.2,
    pause_s: float = 0.4,
    epoch_s: float = 1000.0,
    clock_offset_s: float = 321.5,
    warmup_s: float = 3.0,
    seed: int = 7,
    synced: bool = True,
) -> SyncRun:
    """Run ``seconds`` through ``link``; ``synced=False`` shows each picture
    when it is ready and leaves the audio alone (the baseline)."""
    sync = AvSync()
    buffer = JitterBuffer()
    audio_link: Link = Link(link, seed=seed)
    video_link: Link = Link(link, seed=seed + 1)
    run = SyncRun()
    ready: list[tuple[float, int]] = []
    held: list[tuple[float, int]] = []
    rendered: list[tuple[int, float]] = []
    audio_played: dict[int, float] = {}
    """When each 20 ms audio frame (by its number since the epoch) played."""
    video_wraps = (round(epoch_s * VIDEO_CLOCK_HZ) >> 32) << 32
    seq = 0
    video_every_ms = 1000.0 / fps
    next_video_ms = 0.0
    for ms in range(int(seconds * 1000)):
        sent_at = ms / 1000.0  # the publisher's clock since its call began
        now = epoch_s + sent_at + clock_offset_s  # the receiver's clock
        if ms % _FRAME_MS == 0:
            cycle = sent_at % (talk_s + pause_s)
            voice = cycle < talk_s
            hangover = not voice and cycle < talk_s + _HANGOVER_S
            frame = ms // _FRAME_MS
            if voice or hangover or frame % 50 == 0:
                timestamp = round((epoch_s + sent_at) * SAMPLE_RATE)
                audio_link.send((seq & 0xFFFF, timestamp & 0xFFFFFFFF, voice), now)
                seq += 1
        if ms >= next_video_ms:
            next_video_ms += video_every_ms
            timestamp = round((epoch_s + sent_at) * VIDEO_CLOCK_HZ) & 0xFFFFFFFF
            video_link.send((timestamp,), now)
        for s, ts, voice in audio_link.receive(now):
            buffer.push(s, ts, b"x", voice, now)
        for (ts,) in video_link.receive(now):
            ready.append((now + decode_s, ts))
        if ms % _FRAME_MS == 0:
            buffer.sync_delay_s = sync.audio_delay_wanted_s if synced else None
            played = buffer.pop(now)
            if played.timestamp is not None and played.voice:
                sync.on_audio_played(played.timestamp, now)
                audio_played[played.timestamp // FRAME_SAMPLES] = now
        while ready and ready[0][0] <= now:
            at, ts = ready.pop(0)
            render_at = sync.video_render_at(ts, at) if synced else at
            run.video_held_ms.append((render_at - at) * 1000.0)
            held.append((render_at, ts))
        due = [h for h in held if h[0] <= now]
        if due:
            held = [h for h in held if h[0] > now]
            offset = sync.on_video_rendered(due[-1][1], now)
            if offset is not None and sent_at >= warmup_s:
                run.reported_ms.append(offset * 1000.0)
                rendered.append((due[-1][1], now))
    for timestamp, shown_at in rendered:
        capture = (timestamp + video_wraps) / VIDEO_CLOCK_HZ
        frame, into = divmod(capture * SAMPLE_RATE, FRAME_SAMPLES)
        played_at = audio_played.get(int(frame))
        if played_at is not None:  # its audio was speech, and was played
            heard_at = played_at + into / SAMPLE_RATE
            run.offsets_ms.append((shown_at - heard_at) * 1000.0)
    run.rendered = len(rendered)
    run.audio_target_ms = buffer.target_delay_s * 1000.0
    return run
