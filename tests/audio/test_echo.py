"""The chosen echo canceller (WebRTC AEC3 through livekit) on a synthetic
echo path: the far end's speech played back, delayed 40 ms, through a short
room response, 10 dB down, mixed into the capture; then double talk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_echo_canceller_removes_the_echo_and_keeps_the_near_end(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "tests.audio.echo_path", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout, done.stderr
    result = json.loads(done.stdout.splitlines()[0])
    assert result["erle_db"] > 20, result
    assert result["near_end_kept"] > 0.5, result
