"""Helpers shared by the benchmarks: child processes, RSS, percentiles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Child:
    proc: subprocess.Popen[str]
    host: str
    port: int
    workdir: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def process_cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU time of ``pid`` (this process by default; Linux)."""
    with open(f"/proc/{pid or os.getpid()}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def start_child(args: list[str], workdir: Path | None = None) -> Child:
    """Start ``python ARGS`` and wait for its ``listening on HOST:PORT`` line."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="quicmeet-bench-"))
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(os.environ.get("BENCH_CHILD_LOG", os.devnull), "w"),
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"child did not start: {line!r}")
    host, _, port = line.split()[-1].rpartition(":")
    return Child(proc, host, int(port), workdir)


def start_quicmeet_server(extra: list[str] | None = None) -> Child:
    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-bench-"))
    profile = os.environ.get("BENCH_PROFILE_SERVER")
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    return start_child(
        [
            *prefix,
            "-m",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(workdir / "data"),
            "--cert",
            str(workdir / "cert.pem"),
            "--key",
            str(workdir / "key.pem"),
            "--log-level",
            "error",
            "--stats-file",
            str(workdir / "stats.json"),
            *(extra or []),
        ],
        workdir,
    )
