"""The app's audio process with its speaker's callbacks recorded, for
``bench/audio_callbacks.py``: ``python _audio_callbacks_child.py OUT
--shm ... --down-bytes ...``; writes ``[[began, spent, portaudio], ...]``
(seconds) to OUT at exit."""

from __future__ import annotations

import atexit
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from client.media import audio_devices, audio_process  # noqa: E402

out = Path(sys.argv[1])
records: list[tuple[float, float, float]] = []
callback = audio_devices.Speaker._callback


def recorded(self: Any, data: Any, frames: int, times: Any, status: Any) -> None:
    began = time.monotonic()
    callback(self, data, frames, times, status)
    records.append((began, time.monotonic() - began, times.currentTime))


audio_devices.Speaker._callback = recorded  # type: ignore[method-assign]
atexit.register(lambda: out.write_text(json.dumps(records)))
sys.exit(audio_process.main(sys.argv[2:]))
