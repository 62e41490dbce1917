"""The real sounddevice path on PulseAudio's null sink: listing, playing a
buzz on the speaker and capturing it back from the sink's monitor, at 48 kHz
and through soxr at 44.1 kHz; device errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from client.media import (
    AudioUnavailable,
    Microphone,
    Speaker,
    list_audio_devices,
)
from client.media.audio_sources import buzz
from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE


def spectrum_peak(samples: np.ndarray) -> float:
    """The strongest frequency, Hz."""
    power = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(samples.size)))
    return float(np.argmax(power[10:]) + 10) * SAMPLE_RATE / samples.size


@pytest.mark.parametrize("speaker_rate", [None, 44_100])
def test_speaker_to_microphone_through_pulseaudio(pulse_devices, speaker_rate):
    names = [d.name for d in list_audio_devices()]
    assert "pulse" in names, names
    played = 0
    lock = threading.Lock()

    def pull(now: float) -> np.ndarray:
        nonlocal played
        with lock:
            frame = buzz(FRAME_SAMPLES, played * FRAME_SAMPLES) // 2
            played += 1
        return frame

    captured: list[np.ndarray] = []
    speaker = Speaker("pulse", pull, rate=speaker_rate)
    mic = Microphone("pulse", lambda frame, at: captured.append(frame))
    assert speaker.rate == (speaker_rate or SAMPLE_RATE)
    speaker.start()
    mic.start()
    try:
        deadline = time.monotonic() + 20
        while len(captured) < 75 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        mic.stop()
        speaker.stop()
    assert played >= 25 and len(captured) >= 50
    heard = np.concatenate(captured[-40:])
    # The buzz's 150 Hz fundamental, loud and clear, came back.
    assert np.sqrt(np.mean(heard.astype(float) ** 2)) > 500
    assert abs(spectrum_peak(heard) - 150) < 5


def test_missing_devices_say_so(pulse_devices):
    with pytest.raises(AudioUnavailable, match="no speaker named 'nope'"):
        Speaker("nope", lambda now: np.zeros(FRAME_SAMPLES, np.int16))
    with pytest.raises(AudioUnavailable, match="no microphone '999'"):
        Microphone("999", lambda frame, at: None)
