"""Onsets of stamped audio: found to the sample in chunks of any size, once
per buzz, only after a long enough quiet."""

from __future__ import annotations

import numpy as np
import pytest

from codec.media.audio import OnsetDetector, pair_onsets


def stream(rate: int) -> np.ndarray:
    """Two 200 ms buzzes at 0.3 s and 1.3 s, quiet between."""
    samples = np.zeros(2 * rate, dtype=np.int16)
    for start in (0.3, 1.3):
        first = round(start * rate)
        samples[first : first + rate // 5] = 8000 * np.sign(
            np.sin(np.arange(rate // 5) / 7.0) + 0.01
        )
    return samples


@pytest.mark.parametrize(("rate", "chunk"), [(48_000, 960), (44_100, 441), (48_000, 7)])
def test_each_buzz_is_found_at_its_first_sample(rate: int, chunk: int) -> None:
    detector = OnsetDetector(rate=rate)
    samples = stream(rate)
    found = []
    for start in range(0, samples.size, chunk):
        onset = detector.feed(samples[start : start + chunk], 10.0 + start / rate)
        if onset is not None:
            found.append(onset)
    assert found == pytest.approx([10.3, 11.3], abs=1.5 / rate)


def test_no_onset_without_the_quiet_before() -> None:
    detector = OnsetDetector(quiet_s=0.5)
    loud = np.full(960, 5000, dtype=np.int16)
    quiet = np.zeros(960, dtype=np.int16)
    assert detector.feed(loud, 0.0) == 0.0
    assert detector.feed(quiet, 0.02) is None
    # 20 ms of quiet is no new buzz; a quiet half second makes one.
    assert detector.feed(loud, 0.04) is None
    for n in range(25):
        detector.feed(quiet, 0.06 + n * 0.02)
    assert detector.feed(loud, 0.56) == 0.56


def test_onsets_pair_with_the_latest_one_before() -> None:
    captured = [1.0, 2.0, 3.0, 4.0]
    played = [0.9, 1.05, 2.3, 3.7, 4.049]
    assert pair_onsets(captured, played) == pytest.approx([50.0, 300.0, 49.0])
