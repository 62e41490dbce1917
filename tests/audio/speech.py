"""Speech for the audio tests: espeak-ng sentences, and how to find a
reference in a recording (energy envelopes and waveforms, never bytes)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from client.media import read_wav
from codec.media.audio import SAMPLE_RATE

SENTENCES = {
    "alice": "The quick brown fox jumps over the dog.",
    "bob": "Seven silver spoons lay on the table.",
    "carol": "Please call me back after the report.",
}
VOICES = {"alice": "en-us", "bob": "en", "carol": "en-us+f3"}


def espeak(text: str, path: Path, voice: str = "en-us") -> np.ndarray:
    """Speak ``text`` into a WAV at ``path``; return it at 48 kHz."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (.ci/run installs it)")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "160", "-w", str(path), text],
        check=True,
        timeout=30,
    )
    return read_wav(path)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


def envelope(samples: np.ndarray, window: int = 480) -> np.ndarray:
    """RMS per 10 ms window."""
    n = samples.size // window
    blocks = samples[: n * window].astype(np.float64).reshape(n, window)
    return np.sqrt(np.mean(blocks * blocks, axis=1))


def _best(ref: np.ndarray, rec: np.ndarray, lags: range) -> tuple[float, int]:
    """Highest normalised correlation of ``ref`` against ``rec`` at ``lags``."""
    best, where = -1.0, 0
    ref_c = ref - ref.mean()
    for lag in lags:
        part = rec[lag : lag + ref.size]
        if part.size < ref.size:
            break
        part_c = part - part.mean()
        denom = np.linalg.norm(ref_c) * np.linalg.norm(part_c)
        score = float(ref_c @ part_c / denom) if denom else 0.0
        if score > best:
            best, where = score, lag
    return best, where


def find(reference: np.ndarray, recording: np.ndarray) -> tuple[float, float]:
    """How well ``reference`` appears in ``recording``: the median over its
    half-second pieces of (energy envelope correlation, waveform correlation),
    each piece found within 0.5 s of where the whole sentence matches best,
    so the jitter buffer's dropped or stretched frames (many on a busy
    machine) do not count against it."""
    ref_env, rec_env = envelope(reference), envelope(recording)
    _, start = _best(ref_env, rec_env, range(max(0, rec_env.size - ref_env.size + 1)))
    piece = 50  # envelope windows of 10 ms
    envelopes, waveforms = [], []
    for first in range(0, ref_env.size - piece + 1, piece):
        near = start + first
        score, at = _best(
            ref_env[first : first + piece],
            rec_env,
            range(max(0, near - 50), near + 51),
        )
        envelopes.append(score)
        ref_wave = reference[first * 480 : (first + piece) * 480].astype(float)
        rec_wave = recording.astype(float)
        wave_score, _ = _best(
            ref_wave, rec_wave, range(max(0, at * 480 - 480), at * 480 + 480, 4)
        )
        waveforms.append(wave_score)
    return float(np.median(envelopes)), float(np.median(waveforms))
