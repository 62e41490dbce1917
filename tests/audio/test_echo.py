"""The chosen echo canceller (WebRTC AEC3 through livekit) on a synthetic
echo path: the far end's speech played back, delayed 40 ms, through a short
room response, 10 dB down, mixed into the capture; then double talk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from client.media import EchoCanceller
from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from tests.audio.speech import SENTENCES, VOICES, envelope, espeak


def test_echo_canceller_removes_the_echo_and_keeps_the_near_end(tmp_path: Path):
    far = np.concatenate(
        [espeak(SENTENCES[n], tmp_path / f"{n}.wav") for n in ("alice", "bob")]
    )
    near = espeak(SENTENCES["carol"], tmp_path / "near.wav", VOICES["carol"]) // 2
    taps = np.zeros(1200)
    taps[[0, 300, 700]] = [1.0, 0.3, -0.15]
    delay = int(0.04 * SAMPLE_RATE)
    echo = np.convolve(far.astype(float), taps)[: far.size] * 10 ** (-10 / 20)
    echo = np.concatenate([np.zeros(delay), echo])[: far.size]
    # Then the near end talks over the far end's last words.
    played = np.concatenate([far, far[: near.size]])
    capture = np.concatenate([echo, echo[: near.size] + near])
    capture = np.clip(capture, -32768, 32767).astype(np.int16)
    canceller = EchoCanceller(auto_gain=False)
    out = []
    for start in range(0, played.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        canceller.on_played(played[start : start + FRAME_SAMPLES])
        out.append(canceller.process(capture[start : start + FRAME_SAMPLES]))
    cleaned = np.concatenate(out).astype(float)
    settle = 2 * SAMPLE_RATE
    single = slice(settle, far.size)
    talk = np.abs(played[single].astype(float)) > 300
    before = np.sum(capture[single].astype(float)[talk] ** 2)
    after = np.sum(cleaned[single][talk] ** 2)
    erle_db = 10 * np.log10(before / max(after, 1.0))
    assert erle_db > 20, erle_db
    double = cleaned[far.size : far.size + near.size]
    kept = np.corrcoef(envelope(double), envelope(near[: double.size]))[0, 1]
    assert kept > 0.5, kept
