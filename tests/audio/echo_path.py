"""The synthetic echo path of ``test_echo.py``, run in a child process so the
test process never loads livekit (its FFI runtime can abort the interpreter
at exit: docs/audio.md). ``python -m tests.audio.echo_path DIR`` prints JSON:
ERLE in dB and how well the near end survives double talk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from client.media import EchoCanceller
from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from tests.audio.speech import SENTENCES, VOICES, envelope, espeak


def measure(workdir: Path) -> dict[str, float]:
    far = np.concatenate(
        [espeak(SENTENCES[n], workdir / f"{n}.wav") for n in ("alice", "bob")]
    )
    near = espeak(SENTENCES["carol"], workdir / "near.wav", VOICES["carol"]) // 2
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
    double = cleaned[far.size : far.size + near.size]
    kept = np.corrcoef(envelope(double), envelope(near[: double.size]))[0, 1]
    return {
        "erle_db": float(10 * np.log10(before / max(after, 1.0))),
        "near_end_kept": float(kept),
    }


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]))), flush=True)
