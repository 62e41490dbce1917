"""Benchmark quicmeet's congestion controller against aioquic's Reno and Cubic.

Every run is a bulk stream between two real aioquic connections through the same
netsim link on QuicPair's virtual clock (``tests/ccbulk.py``), both ends running
the controller under test; virtual time makes the figures independent of how fast
or busy this machine is, so a 20 Mbit/s link is measured as such even where
Python QUIC could not fill it in real time. Prints one JSON object:

- ``loss``: per random-loss rate and controller, the stream's goodput (after a
  2-second start) and the bottleneck's queueing delay (p50, p95);
- ``step``: per controller, the capacity drops from ``--step-from`` to
  ``--step-to`` Mbit/s at 5 s: goodput before and after, the queueing delay from
  2 s after the drop on, and how long after the drop the queue took to stay
  under 30 ms (ten packets at 3 Mbit/s) for a full second (null: it never did).

    python bench/congestion.py [--quick] [--seconds 12] [--rate 20] [--rtt-ms 50]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from codec.media.cc import CONGESTION_CONTROL_NAME  # noqa: E402
from netsim import LinkConfig, ScheduleStep  # noqa: E402
from tests.ccbulk import BulkResult, run_bulk  # noqa: E402

ALGORITHMS = ("reno", "cubic", CONGESTION_CONTROL_NAME)
WARMUP_S = 2.0
STEP_AT_S = 5.0
SETTLED_QUEUE_S = 0.030
SETTLED_FOR_S = 1.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _settle_time(result: BulkResult, step_s: float) -> float | None:
    """Seconds from the step until the queue stayed under ``SETTLED_QUEUE_S`` for
    ``SETTLED_FOR_S``; None if it never did."""
    calm_since: float | None = None
    for time_s, delay in result.queue_delay_s:
        if time_s < step_s:
            continue
        if delay >= SETTLED_QUEUE_S:
            calm_since = None
        elif calm_since is None:
            calm_since = time_s
        elif time_s - calm_since >= SETTLED_FOR_S:
            return round(calm_since - step_s, 2)
    return None


def loss_run(
    algorithm: str, loss: float, *, rate_bps: float, rtt_s: float, seconds: float
) -> dict[str, Any]:
    link = LinkConfig(
        delay_s=rtt_s / 2, loss=loss, rate_bps=rate_bps, queue_delay_s=0.1
    )
    started = time.process_time()
    result = run_bulk(algorithm, link, duration_s=seconds)
    delays = result.queue_delays(WARMUP_S, seconds)
    goodput = result.goodput_bps(WARMUP_S, seconds)
    return {
        "goodput_mbps": round(goodput / 1e6, 2),
        "utilization": round(goodput / rate_bps, 3),
        "queue_delay_p50_ms": _ms(_percentile(delays, 50)),
        "queue_delay_p95_ms": _ms(_percentile(delays, 95)),
        "queue_drops": result.dropped_queue,
        "cpu_s": round(time.process_time() - started, 1),
    }


def step_run(
    algorithm: str,
    *,
    rate_from_bps: float,
    rate_to_bps: float,
    rtt_s: float,
    seconds: float,
) -> dict[str, Any]:
    link = LinkConfig(delay_s=rtt_s / 2, rate_bps=rate_from_bps, queue_delay_s=0.3)
    step = ScheduleStep(STEP_AT_S, {"rate_bps": rate_to_bps})
    result = run_bulk(algorithm, link, duration_s=seconds, up_schedule=[step])
    after = result.queue_delays(STEP_AT_S + 2.0, seconds)
    return {
        "goodput_before_mbps": round(result.goodput_bps(WARMUP_S, STEP_AT_S) / 1e6, 2),
        "goodput_after_mbps": round(
            result.goodput_bps(STEP_AT_S + 2.0, seconds) / 1e6, 2
        ),
        "queue_delay_after_p50_ms": _ms(_percentile(after, 50)),
        "queue_delay_after_p95_ms": _ms(_percentile(after, 95)),
        "queue_delay_peak_ms": _ms(max(result.queue_delays(STEP_AT_S, seconds))),
        "settled_after_s": _settle_time(result, STEP_AT_S),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rate", type=float, default=20.0, help="Mbit/s")
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--losses", default="0,1,2,5", help="percent, comma-separated")
    parser.add_argument("--step-from", type=float, default=10.0, help="Mbit/s")
    parser.add_argument("--step-to", type=float, default=3.0, help="Mbit/s")
    parser.add_argument(
        "--quick", action="store_true", help="8 s runs, losses 0 and 2%% only"
    )
    args = parser.parse_args()
    seconds = 8.0 if args.quick else args.seconds
    losses = [0.0, 2.0] if args.quick else [float(x) for x in args.losses.split(",")]
    rate_bps = args.rate * 1e6
    rtt_s = args.rtt_ms / 1000
    started = time.perf_counter()
    loss_table = {
        f"{loss:g}%": {
            algorithm: loss_run(
                algorithm, loss / 100, rate_bps=rate_bps, rtt_s=rtt_s, seconds=seconds
            )
            for algorithm in ALGORITHMS
        }
        for loss in losses
    }
    step_table = {
        algorithm: step_run(
            algorithm,
            rate_from_bps=args.step_from * 1e6,
            rate_to_bps=args.step_to * 1e6,
            rtt_s=rtt_s,
            seconds=max(seconds, STEP_AT_S + 4.0),
        )
        for algorithm in ALGORITHMS
    }
    result = {
        "link": {
            "rate_mbps": args.rate,
            "rtt_ms": args.rtt_ms,
            "buffer_ms": 100,
            "seconds": seconds,
            "warmup_s": WARMUP_S,
        },
        "loss": loss_table,
        "step": {
            "from_mbps": args.step_from,
            "to_mbps": args.step_to,
            "at_s": STEP_AT_S,
            "buffer_ms": 300,
            "results": step_table,
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
