"""Benchmark the netsim UDP impairment proxy; prints one JSON object.

Runs ``python -m netsim.cli`` as a separate process, as an operator would, with a
sender process in front of it and a sink (this process) behind it:

- throughput: with no impairment, the sender offers increasing packet rates; the
  result is the highest rate relayed with under 1% loss (goal: 20,000 packets/s);
- timing: at 5,000 packets/s through a 40 ms delay, the error of each packet's
  delivered delay against the configured 40 ms, p50 and p99 in milliseconds
  (goal: p99 under 2 ms). Send and receive times come from the same monotonic
  clock, so the error includes the two loopback hops and the proxy's own work.
  ``timing_sparse`` repeats it at 200 packets/s, where the proxy's timer alone
  decides when a packet leaves.

    python bench/netsim_proxy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# step number, sequence number, send time (time.monotonic, seconds)
HEADER = struct.Struct("!IId")
PAYLOAD_BYTES = 200
DELAY_S = 0.040


def _sender(
    target: tuple[str, int], steps: list[tuple[int, float, float]], start_at: float
) -> None:
    """Send each step's packets at ``rate`` packets/s for ``duration`` seconds,
    in one burst per millisecond, then pause ``gap`` seconds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    padding = bytes(PAYLOAD_BYTES - HEADER.size)
    clock = time.monotonic
    begin = start_at
    for step, (rate, duration, gap) in enumerate(steps):
        total = int(rate * duration)
        sent = 0
        while sent < total:
            now = clock()
            due = min(total, int((now - begin) * rate) + 1)
            while sent < due:
                packet = HEADER.pack(step, sent, clock()) + padding
                try:
                    sock.sendto(packet, target)
                except BlockingIOError:
                    pass
                sent += 1
            next_burst = begin + sent / rate
            pause = next_burst - clock()
            if pause > 0:
                time.sleep(min(pause, 0.001))
        begin = begin + duration + gap
        time.sleep(max(0.0, begin - clock()))
    sock.close()


def _start_proxy(sink_port: int, extra: list[str]) -> tuple[subprocess.Popen, int]:
    command = [
        sys.executable,
        "-m",
        "netsim.cli",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        f"127.0.0.1:{sink_port}",
        "--stats-every",
        "0",
        "--stats-format",
        "json",
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proxy = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proxy.stdout is not None
    start = json.loads(proxy.stdout.readline())
    return proxy, int(start["listen"].rsplit(":", 1)[1])


def _run(
    extra: list[str], steps: list[tuple[int, float, float]]
) -> list[list[tuple[float, float]]]:
    """Relay ``steps`` through a proxy started with ``extra`` flags; return, per
    step, (send time, receive time) of every packet that arrived."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sink.bind(("127.0.0.1", 0))
    proxy, proxy_port = _start_proxy(sink.getsockname()[1], extra)
    received: list[list[tuple[float, float]]] = [[] for _ in steps]
    try:
        start_at = time.monotonic() + 0.5
        sender = multiprocessing.Process(
            target=_sender, args=(("127.0.0.1", proxy_port), steps, start_at)
        )
        sender.start()
        end = start_at + sum(duration + gap for _, duration, gap in steps) + 1.0
        clock = time.monotonic
        while True:
            remaining = end - clock()
            if remaining <= 0:
                break
            sink.settimeout(remaining)
            try:
                data = sink.recv(2048)
            except TimeoutError:
                break
            arrived = clock()
            step, _, sent_at = HEADER.unpack_from(data)
            received[step].append((sent_at, arrived))
        sender.join()
    finally:
        proxy.terminate()
        proxy.wait()
        sink.close()
    return received


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter steps")
    args = parser.parse_args()
    step_s = 1.0 if args.quick else 2.0

    rates = [10_000, 20_000, 40_000, 60_000, 80_000, 100_000]
    steps = [(rate, step_s, 0.5) for rate in rates]
    throughput = []
    for (rate, duration, _), arrivals in zip(steps, _run([], steps), strict=True):
        offered = int(rate * duration)
        throughput.append(
            {
                "offered_pps": rate,
                "delivered_pps": round(len(arrivals) / duration),
                "loss": round(1 - len(arrivals) / offered, 4),
            }
        )
    sustained = [t["delivered_pps"] for t in throughput if t["loss"] < 0.01]

    delay_flags = ["--delay", f"{DELAY_S * 1000:g}ms"]
    timing = {}
    for name, rate in (("timing", 5_000), ("timing_sparse", 200)):
        steps = [(rate, 2 * step_s, 0.2)]
        (arrivals,) = _run(delay_flags, steps)
        errors_ms = [(received - sent - DELAY_S) * 1000 for sent, received in arrivals]
        timing[name] = {
            "rate_pps": rate,
            "delay_ms": DELAY_S * 1000,
            "packets_sent": int(rate * steps[0][1]),
            "packets_received": len(arrivals),
            "error_p50_ms": round(_percentile(errors_ms, 0.50), 3),
            "error_p99_ms": round(_percentile(errors_ms, 0.99), 3),
            "error_max_ms": round(max(errors_ms), 3),
            "error_min_ms": round(min(errors_ms), 3),
            "error_mean_ms": round(statistics.fmean(errors_ms), 3),
        }
    timing["timing"]["goal_p99_ms"] = 2.0

    result = {
        "benchmark": "netsim_proxy",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "relay_pps": max(sustained, default=0),
        "relay_goal_pps": 20_000,
        "throughput_steps": throughput,
        **timing,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
