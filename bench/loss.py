"""Video through packet loss: a two-person meeting over an impaired link.

Two ``quicmeet-cli meet`` processes send each other synthetic 640x480 video at
30 fps through a quicmeet server on loopback. One of them reaches the server
through ``quicmeet-netsim`` (both directions impaired: half the round trip of
delay each way, a 1.5 Mbit/s rate, random loss or Gilbert-Elliott bursts); the
other is on loopback. Each scenario runs ``--seconds`` (20) per seed. Reported
per scenario and direction (``up``: the impaired member's video, which crosses
the impaired uplink; ``down``: the other's, which crosses the impaired
downlink):

- glass-to-glass latency p50/p95 of the rendered pictures (from their stamps),
- frames per second rendered,
- frozen fraction: the time spent in gaps between rendered pictures longer
  than max(3 frame intervals, 150 ms) over the time rendered, and the number
  of such freezes (the receiver's own counters),
- keyframe requests, NACKs, packets recovered, frames skipped,
- retransmission overhead in percent: packets sent again (by the publisher and
  the SFU) over media packets sent.

Goals (issue 12): at 2% loss and 100 ms RTT p95 under 200 ms and frozen under
2%; at 5% loss and 50 ms RTT p95 under 150 ms and frozen under 3%.

Prints one JSON object and writes a PNG plot of the frozen fraction and p95
against loss (``--plot``, default ``artifacts/loss.png``, not committed).

    python bench/loss.py                       # every scenario (about 6 min)
    python bench/loss.py --quick               # the two goal scenarios, 15 s
    python bench/loss.py --loss 2 --rtt 100    # one scenario
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (  # noqa: I001
    ROOT,
    Child,
    can_plot,
    start_meet,
    start_netsim,
    start_quicmeet_server,
)
from meeting import make_homes, sfu_counters

RATE = "1.5mbit"
GOALS = {
    (2.0, 100): {"p95_ms": 200, "frozen_fraction": 0.02},
    (5.0, 50): {"p95_ms": 150, "frozen_fraction": 0.03},
}
GILBERT_ELLIOTT = "1%,30%,60%,0%"
"""Bursts: 1% chance to enter the bad state, 30% to leave it, 60% loss in it
(about 1.4% of packets lost on average, in runs of about three)."""


def _netsim(upstream: str, rtt_ms: int, loss: float | None, seed: int) -> Child:
    link = ["--delay", f"{rtt_ms / 2:g}ms", "--rate", RATE, "--queue", "300ms"]
    if loss is None:
        link += ["--ge", GILBERT_ELLIOTT]
    elif loss > 0:
        link += ["--loss", f"{loss:g}%"]
    return start_netsim(upstream, link, seed)


def _meet(address: str, home: Path, *args: str) -> subprocess.Popen[str]:
    video = ("--video", "synthetic", "--size", "640x480", "--fps", "30")
    return start_meet(address, home, *video, *args)


def run_scenario(rtt_ms: int, loss: float | None, seconds: float, seed: int) -> dict:
    """One meeting through one link; the figures per direction."""
    server = start_quicmeet_server()
    netsim = _netsim(server.address, rtt_ms, loss, seed)
    work = Path(tempfile.mkdtemp(prefix="quicmeet-bench-loss-"))
    names = ["far", "near"]
    try:
        make_homes(
            work, server.address, {"far": netsim.address, "near": server.address}
        )
        before = sfu_counters(server)
        far = _meet(netsim.address, work / "far", "--create",
                    "--duration", str(seconds + 4),
                    "--stats", str(work / "far.json"))  # fmt: skip
        assert far.stdout is not None
        room_id = json.loads(far.stdout.readline())["room"]["room_id"]
        near = _meet(server.address, work / "near", "--room", room_id,
                     "--duration", str(seconds + 2),
                     "--stats", str(work / "near.json"))  # fmt: skip
        for proc in (far, near):
            if proc.wait(seconds + 60) != 0:
                raise RuntimeError(f"meet failed: {proc.stderr.read()}")
        after = sfu_counters(server)
        stats = {n: json.loads((work / f"{n}.json").read_text()) for n in names}
    finally:
        netsim.stop()
        server.stop()
    sfu = {k: after[k] - before.get(k, 0) for k in after}
    result_sfu = {k: v for k, v in sfu.items() if "retransmi" in k}
    adaptation = ("rate_limit", "feedback", "frames_dropped", "frame_starts")
    result: dict[str, Any] = {
        "rtt_ms": rtt_ms,
        "loss_percent": loss,
        "bursts": GILBERT_ELLIOTT if loss is None else None,
        "seed": seed,
        "sfu_retransmission_counters": result_sfu,
        "sfu_adaptation_counters": {
            k: v for k, v in sfu.items() if any(word in k for word in adaptation)
        },
    }
    for direction, sender, receiver in (("up", "far", "near"), ("down", "near", "far")):
        result[direction] = _direction(stats[sender], stats[receiver], sfu)
    return result


def _direction(sender: dict, receiver: dict, sfu: dict) -> dict[str, Any]:
    (sent,) = sender["sent"]
    received = [r for r in receiver["received"] if r["track_id"] == sent["track_id"]]
    if not received:
        return {"error": "no video received"}
    (got,) = received
    latency = got.get("latency_ms", {})
    rendered = got["frames_rendered"]
    span = rendered / got["fps"] if got["fps"] else 0.0
    # The SFU's retransmissions are counted for both directions together;
    # split them by the share of NACKs each receiver sent.
    return {
        "p50_ms": latency.get("p50"),
        "p95_ms": latency.get("p95"),
        "fps": got["fps"],
        "frames_rendered": rendered,
        "frozen_fraction": round(got["time_frozen_s"] / span, 4) if span else None,
        "freezes": got["freezes"],
        "freezes_late_frame": got.get("freezes_late_frame"),
        "frames_hidden": got["frames_hidden"],
        "stamps_unreadable": got["stamps_unreadable"],
        "keyframe_requests": got["keyframe_requests"],
        "keyframes_sent": sent["keyframes_sent"],
        "publisher_frames_dropped": sent["frames_dropped"],
        # What the sender made and aimed at (bits per second); None where the
        # build does not adapt its rate.
        "publisher_bitrate_bps": sent.get("bitrate_bps"),
        "publisher_target_bps": sent.get("target_bitrate_bps"),
        "publisher_rate_limits": sender.get("rate_limits"),
        "publisher_hop": {
            k: v
            for k, v in sender.get("hop", {}).items()
            if k not in ("timeline", "trace")
        },
        "frames_skipped": got["frames_lost"],
        "nacks_sent": got["nacks_sent"],
        "packets_recovered": got["packets_recovered"],
        "packets_lost_after_recovery": got["packets_lost"],
        "publisher_retransmissions": sent["retransmissions"],
        # Datagrams, each copy of a repair counted: the overhead on the wire.
        "publisher_retransmission_percent": round(
            100
            * sent.get("retransmitted_datagrams", sent["retransmissions"])
            / max(1, sent["packets_sent"]),
            2,
        ),
        "sfu_retransmissions_both_directions": sfu.get("sfu_retransmissions"),
        "sfu_retransmission_percent_both_directions": round(
            100
            * sfu.get("sfu_retransmissions", 0)
            / max(1, sfu.get("sfu_forwarded", 1)),
            2,
        ),
        "sfu_frames_dropped_both_directions": sfu.get("sfu_frames_dropped"),
        "packets_given_up": got.get("packets_given_up"),
        "given_up_after_retry": got.get("given_up_after_retry"),
        "given_up_unasked": got.get("given_up_unasked"),
        "freeze_log": got.get("freeze_log", []),
        "per_second": _per_second(sender, sent["track_id"], got),
    }


def _per_second(sender: dict, track_id: int, got: dict) -> dict[str, list]:
    """The run second by second, from the publisher's start: pictures
    rendered, their median and worst glass-to-glass latency (ms), the
    publisher's hop estimate, what it sent and the SFU's last limit for the
    track (kbit/s; None where the build has no such figure). Where in a run
    frames are lost and what the rates were then."""
    pictures = got.get("timeline", [])
    hop = sender.get("hop", {}).get("timeline", [])
    limits = [
        (t, bps) for t, track, bps in sender.get("rate_limit_timeline", [])
        if track == track_id
    ]  # fmt: skip
    if not pictures:
        return {}
    # From the publisher's first tick where there is one: a late start shows.
    start = min(pictures[0][0], hop[0][0]) if hop else pictures[0][0]
    seconds = int(pictures[-1][0] - start) + 1
    rendered = [0] * seconds
    latencies: list[list[float]] = [[] for _ in range(seconds)]
    for t, latency in pictures:
        i = int(t - start)
        rendered[i] += 1
        if latency is not None:
            latencies[i].append(latency)
    estimate: list[int | None] = [None] * seconds
    sent: list[int | None] = [None] * seconds
    bytes_at: dict[int, int] = {}
    for t, bps, total in hop:
        i = int(t - start)
        if 0 <= i < seconds:
            estimate[i] = round(bps / 1000)
            bytes_at.setdefault(i, total)
    for i in range(seconds - 1):
        if i in bytes_at and i + 1 in bytes_at:
            sent[i] = round((bytes_at[i + 1] - bytes_at[i]) * 8 / 1000)
    limit: list[int | None] = [None] * seconds
    for t, bps in limits:
        i = int(t - start)
        if 0 <= i < seconds and bps is not None and bps < 0xFFFFFFFF:  # else: no limit
            limit[i] = round(bps / 1000)
    return {
        "rendered": rendered,
        "median_latency_ms": [
            round(sorted(ms)[len(ms) // 2]) if ms else None for ms in latencies
        ],
        "worst_latency_ms": [round(max(ms)) if ms else None for ms in latencies],
        "estimate_kbps": estimate,
        "sent_kbps": sent,
        "limit_kbps": limit,
    }


def plot(results: list[dict], path: Path) -> None:
    """Frozen fraction and p95 against loss, one line per RTT and direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (frozen_axis, p95_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for rtt in sorted({r["rtt_ms"] for r in results}):
        for direction, style in (("up", "-o"), ("down", "--s")):
            rows = sorted(
                (
                    r
                    for r in results
                    if r["rtt_ms"] == rtt
                    and r["loss_percent"] is not None
                    and "error" not in r[direction]
                ),
                key=lambda r: r["loss_percent"],
            )
            if not rows:
                continue
            losses = [r["loss_percent"] for r in rows]
            label = f"RTT {rtt} ms, {direction}"
            frozen = [100 * (r[direction]["frozen_fraction"] or 0) for r in rows]
            frozen_axis.plot(losses, frozen, style, label=label)
            p95_axis.plot(
                losses, [r[direction]["p95_ms"] for r in rows], style, label=label
            )
    frozen_axis.set(xlabel="random loss (%)", ylabel="frozen (% of time)",
                    title="Frozen fraction")  # fmt: skip
    p95_axis.set(xlabel="random loss (%)", ylabel="glass-to-glass p95 (ms)",
                 title="Latency p95")  # fmt: skip
    for axis in (frozen_axis, p95_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"quicmeet, 640x480 at 30 fps through {RATE}, one member impaired")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--loss", type=float, action="append", help="percent")
    parser.add_argument("--rtt", type=int, action="append", help="milliseconds")
    parser.add_argument("--no-bursts", action="store_true")
    parser.add_argument("--plot", type=Path, default=ROOT / "artifacts" / "loss.png")
    args = parser.parse_args()
    if args.quick:
        scenarios: list[tuple[int, float | None]] = [(100, 2.0), (50, 5.0)]
        args.seconds = min(args.seconds, 15.0)
    else:
        losses = args.loss or [0.0, 1.0, 2.0, 5.0, 10.0]
        rtts = args.rtt or [50, 100]
        scenarios = [(rtt, loss) for rtt in rtts for loss in losses]
        if not args.no_bursts and not args.loss:
            scenarios += [(rtt, None) for rtt in rtts]
    results = []
    started = time.monotonic()
    for rtt, loss in scenarios:
        for seed in range(1, args.seeds + 1):
            result = run_scenario(rtt, loss, args.seconds, seed)
            goal = GOALS.get((loss, rtt)) if loss is not None else None
            if goal is not None:
                result["goal"] = goal
                result["goal_met"] = all(
                    result[d].get("p95_ms") is not None
                    and result[d]["p95_ms"] < goal["p95_ms"]
                    and (result[d]["frozen_fraction"] or 0) < goal["frozen_fraction"]
                    for d in ("up", "down")
                )
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    if can_plot():
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(results, args.plot)
    else:
        args.plot = None
    print(
        json.dumps(
            {
                "size": "640x480",
                "fps": 30,
                "rate": RATE,
                "seconds_per_run": args.seconds,
                "elapsed_s": round(time.monotonic() - started, 1),
                "plot": str(args.plot) if args.plot else None,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
