"""Lining up what a listener played with the speech that was sent, for PESQ.

``align_global`` shifts the whole recording by the one lag of best
cross-correlation. A jitter buffer that stretches or drops frames, or skips
through a silence, moves the later utterances against the earlier ones, so
one lag fits only part of the talk: ``align_utterances`` finds the lag of
each utterance (speech between pauses of the reference) near the global one,
as PESQ's own per-utterance alignment does within its limits.
"""

from __future__ import annotations

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

PAUSE_S = 0.15
"""Quiet in the reference at least this long separates two utterances."""
SEARCH_S = 0.5
"""How far (seconds) an utterance's lag may lie from the global lag."""


def best_lag(reference: np.ndarray, heard: np.ndarray, limit: int | None = None) -> int:
    """The shift of ``heard`` (samples, 0 up to ``limit``, default its
    length) that best matches ``reference``."""
    size = 1 << int(np.ceil(np.log2(reference.size + heard.size)))
    spectrum = np.fft.rfft(heard.astype(float), size) * np.conj(
        np.fft.rfft(reference.astype(float), size)
    )
    end = heard.size if limit is None else limit + 1
    return int(np.argmax(np.fft.irfft(spectrum, size)[:end]))


def _window(heard: np.ndarray, start: int, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int16)
    if start < heard.size:
        part = heard[max(start, 0) : start + size]
        out[max(-start, 0) : max(-start, 0) + part.size] = part[:size]
    return out


def align_global(reference: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """``heard`` shifted by one lag to line up with ``reference``."""
    return _window(heard, best_lag(reference, heard), reference.size)


def utterances(reference: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges of the reference's speech, split at pauses
    of at least :data:`PAUSE_S` (frames 40 dB below the loudest)."""
    frames = reference.size // FRAME_SAMPLES
    energy = np.array(
        [
            np.mean(reference[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] ** 2.0)
            for i in range(frames)
        ]
    )
    loud = energy > energy.max() * 1e-4
    gap = int(PAUSE_S * SAMPLE_RATE / FRAME_SAMPLES)
    spans: list[tuple[int, int]] = []
    quiet = gap
    for i, is_loud in enumerate(loud):
        if not is_loud:
            quiet += 1
            continue
        if quiet >= gap or not spans:
            spans.append((i, i + 1))
        else:
            spans[-1] = (spans[-1][0], i + 1)
        quiet = 0
    return [(s * FRAME_SAMPLES, e * FRAME_SAMPLES) for s, e in spans]


def align_utterances(reference: np.ndarray, heard: np.ndarray) -> tuple:
    """``heard`` rebuilt on the reference's timeline, each utterance at its
    own best lag; returns (samples, lags in ms relative to the global lag)."""
    lag0 = best_lag(reference, heard)
    search = int(SEARCH_S * SAMPLE_RATE)
    out = np.zeros(reference.size, dtype=np.int16)
    shifts = []
    for start, end in utterances(reference):
        seg = _window(heard, start + lag0 - search, end - start + 2 * search)
        shift = best_lag(reference[start:end], seg, 2 * search) - search
        out[start:end] = _window(heard, start + lag0 + shift, end - start)
        shifts.append(round(shift / SAMPLE_RATE * 1000.0, 1))
    return out, shifts
