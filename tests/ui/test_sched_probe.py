"""The scheduling probe that tells the machine's stalls from the app's."""

from __future__ import annotations

import os
import signal
import time

from .sched_probe import SchedProbe


def test_the_probe_reports_a_wakeup_the_machine_held_back() -> None:
    probe = SchedProbe()
    time.sleep(0.1)
    os.kill(probe.proc.pid, signal.SIGSTOP)  # held back, as by a busy machine
    time.sleep(0.08)
    resumed = time.perf_counter()
    os.kill(probe.proc.pid, signal.SIGCONT)
    time.sleep(0.1)
    late = probe.stop()
    assert probe.proc.returncode == 0
    worst_end, worst_ms = max(late, key=lambda pair: pair[1])
    assert worst_ms >= 60
    # Its end is on this process's clock: just after the probe was resumed.
    assert resumed <= worst_end < resumed + 0.05
