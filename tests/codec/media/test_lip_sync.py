"""Lip sync on a virtual clock: pictures wait for their audio on a clean
link and at 20 ms of jitter, audio waits for slow video, the offset of every
picture stays within ±40 ms, and the video clock's wrap is placed right."""

from __future__ import annotations

import pytest

from codec.media.audio import SAMPLE_RATE, AvSync
from codec.media.audio.sync import VIDEO_CLOCK_HZ
from netsim import LinkConfig

from .lipsync_path import run_lip_sync

BOUND_MS = 40.0


def test_pictures_wait_for_their_audio_on_a_clean_link():
    run = run_lip_sync(LinkConfig(delay_s=0.03), 10.0)
    assert run.rendered > 200 and len(run.offsets_ms) > 100
    assert max(abs(o) for o in run.offsets_ms) <= BOUND_MS
    assert max(abs(o) for o in run.reported_ms) <= BOUND_MS
    # Audio's buffer (20 ms and more) is slower than a 10 ms decode: the
    # pictures are the ones held.
    assert sorted(run.video_held_ms)[len(run.video_held_ms) // 2] > 5


def test_offset_stays_within_bounds_at_20_ms_of_jitter():
    link = LinkConfig(delay_s=0.03, jitter_s=0.02, keep_order=False)
    run = run_lip_sync(link, 12.0)
    assert run.rendered > 250 and len(run.offsets_ms) > 150
    offsets = sorted(abs(o) for o in run.offsets_ms)
    assert offsets[int(0.95 * len(offsets))] <= BOUND_MS
    assert max(offsets) <= 2 * BOUND_MS


def test_audio_waits_for_slow_video():
    """Decoding takes 150 ms: the audio's target rises to meet the video
    (in its pauses) instead of the pictures running late."""
    run = run_lip_sync(LinkConfig(delay_s=0.03), 12.0, decode_s=0.15, warmup_s=5.0)
    assert run.audio_target_ms >= 120
    offsets = sorted(abs(o) for o in run.offsets_ms)
    assert offsets[int(0.95 * len(offsets))] <= BOUND_MS
    unsynced = run_lip_sync(
        LinkConfig(delay_s=0.03), 12.0, decode_s=0.15, warmup_s=5.0, synced=False
    )
    assert sorted(unsynced.offsets_ms)[len(unsynced.offsets_ms) // 2] > 100


def test_without_audio_pictures_are_shown_at_once():
    sync = AvSync()
    assert sync.video_render_at(90_000, 5.0) == 5.0
    assert sync.on_video_rendered(90_000, 5.0) is None
    assert sync.stats(5.0).samples == 0


def test_audio_heard_long_ago_no_longer_holds_pictures():
    sync = AvSync(audio_stale_s=10.0)
    sync.on_audio_played(10 * SAMPLE_RATE, 100.0)  # captured at 10 s, delay 90 s
    ready_at = sync.video_render_at(round(10.1 * VIDEO_CLOCK_HZ), 100.05)
    assert ready_at == pytest.approx(100.1)
    assert sync.video_render_at(round(25 * VIDEO_CLOCK_HZ), 111.0) == 111.0


def test_video_clock_wrap_is_placed_next_to_the_audio():
    """20 h into a call the 90 kHz clock has wrapped once (13.2 h) while the
    48 kHz one has not (24.8 h): the picture is still matched to its audio."""
    sync = AvSync()
    capture_s = 20 * 3600.0
    sync.on_audio_played(round(capture_s * SAMPLE_RATE), capture_s + 0.08)
    video_ts = round(capture_s * VIDEO_CLOCK_HZ) & 0xFFFFFFFF
    assert sync.video_render_at(video_ts, capture_s + 0.03) == pytest.approx(
        capture_s + 0.08
    )
    assert sync.on_video_rendered(video_ts, capture_s + 0.08) == pytest.approx(0.0)
    stats = sync.stats(capture_s + 0.08)
    assert stats.samples == 1 and stats.median_ms == 0.0
    assert stats.audio_delay_ms == 80.0 and stats.audio_delay_wanted_ms == 30.0


def test_a_picture_never_waits_longer_than_the_cap():
    sync = AvSync(max_video_hold_s=0.5)
    sync.on_audio_played(0, 2.0)  # audio 2 s behind: a broken path
    assert sync.video_render_at(0, 0.1) == pytest.approx(0.6)
