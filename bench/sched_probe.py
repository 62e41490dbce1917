"""The machine's own stalls, measured beside the app's.

A separate process, nearly idle and at the app's priority, wakes every 10 ms
and notes how late it woke. This machine is a virtual one with two shared
cores: now and then every process on it waits tens of milliseconds at once,
and no app can help that. ``bench/ui.py`` counts a stall of the Tk
loop during which even the probe woke 25 ms or more late as the machine's,
reports how much of each stall the probe shared
(:func:`stall.shared_ms`), and tells the app's own stalls apart.

    python bench/sched_probe.py [--interval-ms 10] [--over-ms 5]

Prints ``ready``, runs until its stdin closes, then prints a JSON list of
``[ended, late_ms]`` pairs, ``ended`` on the ``time.perf_counter`` clock (on
Linux the system-wide monotonic clock).
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import time
from pathlib import Path


def watch(interval_s: float, over_ms: float) -> list[list[float]]:
    """Wake every ``interval_s`` until stdin closes; the wakeups later than
    ``over_ms``."""
    late: list[list[float]] = []
    last = time.perf_counter()
    while True:
        closed, _, _ = select.select([sys.stdin], [], [], interval_s)
        now = time.perf_counter()
        if closed:
            return late
        late_ms = (now - last - interval_s) * 1000
        if late_ms > over_ms:
            late.append([round(now, 4), round(late_ms, 1)])
        last = now


class SchedProbe:
    """The probe as a child process: start it, run the work, :meth:`stop`."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError("the scheduling probe did not start")

    def stop(self) -> list[tuple[float, float]]:
        """The probe's late wakeups, ``(ended, late_ms)``."""
        out, _ = self.proc.communicate(timeout=10)
        if self.proc.returncode != 0:
            raise RuntimeError(f"the scheduling probe failed: {self.proc.returncode}")
        return [(ended, ms) for ended, ms in json.loads(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--over-ms", type=float, default=5.0)
    args = parser.parse_args()
    print("ready", flush=True)
    late = watch(args.interval_ms / 1000, args.over_ms)
    json.dump(late, sys.stdout)


if __name__ == "__main__":
    main()
