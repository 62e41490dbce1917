"""Echo cancellers compared on a synthetic echo path: ERLE and CPU.

The far end's speech (espeak-ng) is "played"; the echo is that speech
delayed by ``--delay-ms``, through a short decaying room response, attenuated
by ``--attenuation-db``, plus a little noise: the near-end capture with
nobody speaking locally, and for the last seconds a near-end talker too
(double talk: what of the near end survives). Each candidate gets the played
signal as its reference and the capture as its input, 10 ms at a time; ERLE
is the capture's power over the output's, in dB, after ``--converge-s``
seconds and before the double talk; CPU is the mean process time per 10 ms
frame. A candidate that does not install here is
reported as missing, not skipped silently.

    python bench/audio_aec.py [--delay-ms 40] [--attenuation-db 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.media import read_wav  # noqa: E402
from codec.media.audio import SAMPLE_RATE  # noqa: E402

TEN_MS = SAMPLE_RATE // 100
FAR_END = (
    "The quick brown fox jumps over the lazy dog. Seven silver spoons lay on "
    "the table. Please call me back after you have read the report, and bring "
    "the blue folder with you when you come to the meeting tomorrow morning."
)

Canceller = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(capture 10 ms, played 10 ms) -> cleaned 10 ms, all int16 at 48 kHz."""


NEAR_END = "Hello, can you hear me now? I think the sound is much better today."


def speech(text: str, voice: str = "en-us") -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text],
            check=True,
        )
        return read_wav(path)


def echo_path(played: np.ndarray, delay_ms: float, attenuation_db: float):
    """The capture: the played speech, delayed, through a room, attenuated."""
    rng = np.random.default_rng(7)
    taps = np.zeros(int(0.03 * SAMPLE_RATE))
    taps[0] = 1.0
    for index in rng.integers(50, taps.size, 12):
        taps[index] += rng.uniform(-0.3, 0.3) * np.exp(-index / (0.01 * SAMPLE_RATE))
    room = np.convolve(played.astype(float), taps)[: played.size]
    delay = int(delay_ms * SAMPLE_RATE / 1000)
    echo = np.concatenate([np.zeros(delay), room])[: played.size]
    echo *= 10 ** (-attenuation_db / 20)
    echo += rng.normal(0, 30, echo.size)
    return np.clip(echo, -32768, 32767).astype(np.int16)


def livekit_apm() -> Canceller:
    from livekit import rtc

    apm = rtc.AudioProcessingModule(
        echo_cancellation=True, noise_suppression=True, high_pass_filter=True
    )

    def run(capture: np.ndarray, played: np.ndarray) -> np.ndarray:
        reverse = rtc.AudioFrame(played.tobytes(), SAMPLE_RATE, 1, TEN_MS)
        apm.process_reverse_stream(reverse)
        frame = rtc.AudioFrame(capture.tobytes(), SAMPLE_RATE, 1, TEN_MS)
        apm.process_stream(frame)
        return np.frombuffer(bytes(frame.data), dtype=np.int16).copy()

    return run


def aec_audio_processing() -> Canceller:
    from aec_audio_processing import AudioProcessor

    ap = AudioProcessor(enable_aec=True, enable_ns=True, enable_agc=False)
    ap.set_stream_format(SAMPLE_RATE, 1)
    ap.set_reverse_stream_format(SAMPLE_RATE, 1)

    def run(capture: np.ndarray, played: np.ndarray) -> np.ndarray:
        ap.process_reverse_stream(played.tobytes())
        out = ap.process_stream(capture.tobytes())
        return np.frombuffer(out, dtype=np.int16).copy()

    return run


def speexdsp_aec() -> Canceller:
    from speexdsp_aec import SpeexAec

    aec = SpeexAec(sample_rate=SAMPLE_RATE, frame_ms=10, filter_tail_ms=200)

    def run(capture: np.ndarray, played: np.ndarray) -> np.ndarray:
        return np.frombuffer(aec.process(capture, played), dtype=np.int16).copy()

    return run


CANDIDATES = {
    "livekit (WebRTC AEC3 + NS)": ("livekit", livekit_apm),
    "aec-audio-processing (WebRTC APM + NS)": (
        "aec-audio-processing",
        aec_audio_processing,
    ),
    "speexdsp-aec (Speex MDF)": ("speexdsp-aec", speexdsp_aec),
}


def envelope_correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size) // 480 * 480
    ea = np.sqrt(np.mean(a[:n].astype(float).reshape(-1, 480) ** 2, axis=1))
    eb = np.sqrt(np.mean(b[:n].astype(float).reshape(-1, 480) ** 2, axis=1))
    return float(np.corrcoef(ea, eb)[0, 1])


def measure(
    make: Callable[[], Canceller],
    played: np.ndarray,
    capture: np.ndarray,
    converge_s: float,
    near: np.ndarray,
    near_at: int,
):
    cancel = make()
    outputs = []
    cpu = 0.0
    for start in range(0, played.size - TEN_MS + 1, TEN_MS):
        began = time.process_time()
        out = cancel(capture[start : start + TEN_MS], played[start : start + TEN_MS])
        cpu += time.process_time() - began
        outputs.append(out)
    frames = len(outputs)
    result = np.concatenate(outputs).astype(float)
    skip = int(converge_s * SAMPLE_RATE)
    mic = capture[skip : result.size].astype(float)
    out = result[skip:]
    # Only where the far end talks: ERLE is undefined in silence.
    active = np.abs(played[skip : result.size].astype(float)) > 300
    region = slice(skip, near_at)
    mic = capture[region].astype(float)
    out = result[region]
    active = np.abs(played[region].astype(float)) > 300
    erle = 10 * np.log10(np.sum(mic[active] ** 2) / max(np.sum(out[active] ** 2), 1.0))
    # Double talk: how much of the near end's own speech survives.
    kept = envelope_correlation(result[near_at : near_at + near.size], near)
    return {
        "erle_db": round(float(erle), 1),
        "double_talk_near_end_envelope_correlation": round(kept, 3),
        "cpu_us_per_10ms": round(cpu / frames * 1e6, 1),
    }


def compare(delay_ms: float, attenuation_db: float, converge_s: float) -> dict:
    played = speech(FAR_END)
    capture = echo_path(played, delay_ms, attenuation_db)
    near = speech(NEAR_END, "en-us+f3") // 2
    near_at = played.size - near.size - SAMPLE_RATE // 2
    capture = capture.copy()
    mixed = capture[near_at : near_at + near.size].astype(int) + near
    capture[near_at : near_at + near.size] = np.clip(mixed, -32768, 32767)
    results: dict[str, object] = {}
    for name, (package, make) in CANDIDATES.items():
        try:
            results[name] = measure(make, played, capture, converge_s, near, near_at)
        except ImportError as exc:
            results[name] = {"missing": f"{package}: {exc}"}
    return {
        "echo_delay_ms": delay_ms,
        "echo_attenuation_db": attenuation_db,
        "far_end_seconds": round(played.size / SAMPLE_RATE, 2),
        "converge_s": converge_s,
        "candidates": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--attenuation-db", type=float, default=10.0)
    parser.add_argument("--converge-s", type=float, default=2.0)
    args = parser.parse_args()
    result = compare(args.delay_ms, args.attenuation_db, args.converge_s)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
