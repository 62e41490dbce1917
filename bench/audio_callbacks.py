"""How late the speaker's callbacks run in the app's audio process while the
machine is busy and the microphone opens beside a playing speaker.

A PulseAudio null sink of the benchmark's own; the app's audio process
(:class:`client.media.audio_host.AudioHost`, the real one, started through
``bench/_audio_callbacks_child.py``, which records every speaker callback:
when it began, how long it ran, and PortAudio's time for it) opens the
speaker; ``--load`` processes of two busy Python threads each start; after
``--mic-at`` seconds the microphone opens with the capture chain (echo
cancellation), as when a user unmutes. Prints one JSON object:

- ``underruns`` and ``speaker_buffer_ms`` at the end (the adaptive buffer
  steps up once per underrun);
- ``gap_p99_ms`` / ``gap_max_ms``: between consecutive callbacks (20 ms
  when on time; the device buffer, 40 ms to start with, runs dry past
  about 20 ms late);
- ``callback_p99_ms`` / ``callback_max_ms``: time spent inside a callback
  (what it waited for in there included: the GIL, a lock);
- ``late``: each gap over 30 ms, seconds after the speaker opened, with
  PortAudio's own gap beside it (equal: PortAudio's thread ran late; ours
  larger: our callback waited for the GIL before its first line).

    python bench/audio_callbacks.py [--load 3] [--seconds 30] [--mic-at 8]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from client.media import audio_host  # noqa: E402
from client.media import audio_link as link  # noqa: E402
from tests.pulse import null_sink  # noqa: E402

CHILD = Path(__file__).with_name("_audio_callbacks_child.py")
SPIN = """
import threading

def spin():
    while True:
        pass

for _ in range(2):
    threading.Thread(target=spin).start()
"""


class RecordingHost(audio_host.AudioHost):
    """The app's host, its process started through the recording child."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def _command(self, block_name: str) -> list[str]:
        return [
            sys.executable,
            str(CHILD),
            str(self.out),
            *super()._command(block_name)[3:],
        ]


def run(load: int, seconds: float, mic_at: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callbacks.json"
        with null_sink(Path(tmp)):
            host = RecordingHost(out)
            host.start()
            busy: list[subprocess.Popen[bytes]] = []
            try:
                host.open_device(link.OpenDevice(True, "pulse", None))
                opened = time.monotonic()
                busy = [
                    subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(load)
                ]
                time.sleep(mic_at)
                host.open_device(link.OpenDevice(False, "pulse", None, True))
                mic_opened = time.monotonic()
                end = opened + seconds
                while time.monotonic() < end:
                    try:  # what the microphone captures is not looked at
                        host.captured.get(timeout=0.1)
                    except queue.Empty:
                        pass
                stats = host.stats
            finally:
                for process in busy:
                    process.kill()
                    process.wait()
                host.stop()
        records = np.array(json.loads(out.read_text()))
    began, spent, portaudio = records[:, 0], records[:, 1], records[:, 2]
    gaps = np.diff(began) * 1000
    steady = gaps[int(3 / 0.02) :]  # after the stream's start
    late = np.where(gaps > 30)[0]
    return {
        "load_processes": load,
        "seconds": seconds,
        "mic_opened_s": round(mic_opened - opened, 2),
        "callbacks": int(began.size),
        "underruns": None if stats is None else stats.underruns,
        "speaker_buffer_ms": None if stats is None else stats.speaker_latency_ms,
        "gap_p99_ms": round(float(np.percentile(steady, 99)), 1),
        "gap_max_ms": round(float(steady.max()), 1),
        "callback_p99_ms": round(float(np.percentile(spent, 99)) * 1000, 2),
        "callback_max_ms": round(float(spent.max()) * 1000, 1),
        "late": [
            {
                "at_s": round(float(began[i + 1] - began[0]), 2),
                "gap_ms": round(float(gaps[i]), 1),
                "portaudio_gap_ms": round(
                    float(portaudio[i + 1] - portaudio[i]) * 1000, 1
                ),
            }
            for i in late
            if began[i + 1] - began[0] > 3
        ],
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=int, default=3, help="busy processes")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--mic-at", type=float, default=8.0)
    args = parser.parse_args()
    print(json.dumps(run(args.load, args.seconds, args.mic_at)), flush=True)


if __name__ == "__main__":
    main()
