"""A PulseAudio daemon with a null sink, so the real sounddevice path has
devices to open: what is played on the sink comes back on its monitor. The
audio and desktop app suites import the fixture into their conftests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SINK = "quicmeet_speaker"


@contextmanager
def null_sink(runtime: Path) -> Iterator[str]:
    """Start ``pulseaudio`` (as root it needs ``-n`` with explicit modules)
    with its socket in ``runtime``, point this process's PortAudio/ALSA (and
    the children it starts afterwards) at it, yield the sink's name, stop it.
    The ALSA ``pulse`` device then plays on the sink and records its monitor."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio is not installed (.ci/run installs it)")
    socket = runtime / "native"
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "HOME": str(runtime)}
    subprocess.run(
        [
            "pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1",
            "--disallow-exit", "--use-pid-file=yes", "--log-target=stderr",
            f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
            f"--load=module-null-sink sink_name={SINK} rate=48000 channels=1",
            "--load=module-always-sink",
        ],
        env=env,
        check=True,
        timeout=30,
        capture_output=True,
    )  # fmt: skip
    saved = {
        k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE")
    }
    os.environ["PULSE_SERVER"] = f"unix:{socket}"
    os.environ["PULSE_SINK"] = SINK
    os.environ["PULSE_SOURCE"] = f"{SINK}.monitor"
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert time.monotonic() < deadline, "pulseaudio did not start"
            time.sleep(0.05)
        yield SINK
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        pid = (runtime / "pid").read_text().split()[0]
        os.kill(int(pid), 15)


@pytest.fixture(scope="session")
def pulse_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PulseAudio null sink for the whole session (:func:`null_sink`)."""
    with null_sink(Path(tmp_path_factory.mktemp("pulse"))) as sink:
        yield sink
