"""Meetings: glass-to-glass latency, and SFU capacity next to bare aioquic.

Part 1, latency: ``--participants`` (3) ``quicmeet-cli meet`` processes send
synthetic 640x480 video at 30 fps to each other through a quicmeet server on
loopback; every received picture's stamp gives its glass-to-glass latency (capture
to render, through encoder, SFU and decoder). Goal: p95 under 60 ms.

Part 2, capacity: rooms of ``--room-size`` (4) load participants replaying
pre-encoded 640x480 video at about 500 kbit/s (``_meeting_load.py``) are added
``--rooms-step`` at a time (sending pauses while they join, since creating their
accounts hashes passwords on the server; each step then warms up for 2 s) until loss
passes 1 % or the p95 one-way delay through the server passes 100 ms in two windows
in a row (a busy machine can spoil one). The same load runs against a bare aioquic
process that re-sends every datagram to the other members of its group
(``_meeting_bare.py``). Reported per step: rooms, forwarded datagrams per second,
loss, delay, and the CPU of the server and of the load generator. Goal: quicmeet
forwards at least half the bare rate. On a machine with few cores the load generator
(which receives as many datagrams as the server sends) may saturate first;
``server_cpu_us_per_forwarded`` compares the two servers' cost per datagram
independently of that. With ``--perf`` (``linux-perf``, as root), each
step's ``server_cpu_percent_by_code`` says where the server's CPU went: the
Python interpreter, crypto, the kernel, the C library, the event loop's C code.

Prints one JSON object.

    python bench/meeting.py                # full run (a few minutes)
    python bench/meeting.py --quick        # about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (  # noqa: I001
    ROOT,
    Child,
    PerfSampler,
    process_cpu_seconds,
    start_child,
    start_meet,
    start_quicmeet_server,
)
from _meeting_load import Load, pre_encode

from client import Home, Session
from client.home import SavedSession

PASSWORD = "benchmark password"


async def make_accounts(address: str, names: list[str]) -> list[bytes]:
    """Register and log in each name; return their session tokens."""
    tokens = []
    for name in names:
        session = Session(address, reconnect=False)
        await session.connect()
        await session.register(name, PASSWORD)
        await session.login(name, PASSWORD)
        assert session.token is not None
        tokens.append(session.token)
        await session.close()
    return tokens


def make_homes(work: Path, server: str, addresses: dict[str, str]) -> None:
    """Register each name of ``addresses`` at ``server`` and save its session
    in ``work/<name>``, pointing at its address (the server itself, or a
    netsim in front of it)."""
    names = list(addresses)
    tokens = asyncio.run(make_accounts(server, names))
    for name, token in zip(names, tokens, strict=True):
        Home(work / name).save_session(
            SavedSession(addresses[name], name, token, 2**53)
        )


# -- part 1: glass-to-glass latency ------------------------------------------------


def latency_run(args: argparse.Namespace) -> dict[str, object]:
    server = start_quicmeet_server()
    work = Path(tempfile.mkdtemp(prefix="quicmeet-bench-meeting-"))
    names = [f"member{i}" for i in range(args.participants)]
    try:
        make_homes(work, server.address, dict.fromkeys(names, server.address))
        common = ["--video", "synthetic", "--size", args.size, "--fps", str(args.fps)]
        cpu_before = process_cpu_seconds(server.proc.pid)
        started = time.monotonic()
        duration = args.latency_seconds
        first = start_meet(server.address, work / names[0], "--create", *common,
                      "--duration", str(duration + 2 * len(names)),
                      "--stats", str(work / f"{names[0]}.json"))  # fmt: skip
        line = first.stdout.readline()
        room_id = json.loads(line)["room"]["room_id"]
        procs = [first]
        for i, name in enumerate(names[1:], start=1):
            procs.append(
                start_meet(
                    server.address,
                    work / name,
                    "--room",
                    room_id,
                    *common,
                    "--duration",
                    str(duration + 2 * (len(names) - i)),
                    "--stats",
                    str(work / f"{name}.json"),
                )  # fmt: skip
            )
        for proc in procs:
            if proc.wait(duration + 60) != 0:
                raise RuntimeError(f"meet failed: {proc.stderr.read()}")
        elapsed = time.monotonic() - started
        server_cpu = (process_cpu_seconds(server.proc.pid) - cpu_before) / elapsed
        tracks = []
        for name in names:
            stats = json.loads((work / f"{name}.json").read_text())
            for received in stats["received"]:
                latency = received.get("latency_ms", {})
                tracks.append(
                    {
                        "from": received["user"],
                        "to": name,
                        "frames_rendered": received["frames_rendered"],
                        "fps": received["fps"],
                        "stamps_unreadable": received["stamps_unreadable"],
                        "p50_ms": latency.get("p50"),
                        "p95_ms": latency.get("p95"),
                        "p99_ms": latency.get("p99"),
                    }
                )
        p95s = [t["p95_ms"] for t in tracks if t["p95_ms"] is not None]
        return {
            "participants": len(names),
            "size": args.size,
            "fps": args.fps,
            "tracks": tracks,
            "p95_ms_worst_track": max(p95s) if p95s else None,
            "p50_ms_median_track": sorted(t["p50_ms"] for t in tracks)[len(tracks) // 2]
            if tracks
            else None,
            "goal_p95_ms": 60,
            "server_cpu": round(server_cpu, 3),
        }
    finally:
        server.stop()


# -- part 2: capacity ----------------------------------------------------------------


_NODE_COUNTERS = (
    "short_datagram_packets",
    "udp_datagrams_sent",
    "udp_datagrams_received",
)
"""The node's counters a step reads besides the SFU's own."""


def sfu_counters(server: Child) -> dict[str, int]:
    """The quicmeet server's SFU counters (it writes them on SIGUSR1)."""
    path = server.workdir / "stats.json"
    path.unlink(missing_ok=True)
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server wrote no stats")
        time.sleep(0.02)
    stats = json.loads(path.read_text())
    return {
        k: v for k, v in stats.items() if k.startswith("sfu_") or k in _NODE_COUNTERS
    }


def _passes(step: dict[str, Any]) -> bool:
    return step["loss"] <= 0.01 and step["latency_p95_ms"] <= 100


async def _measure_step(
    load: Load, server: Child, kind: str, seconds: float, perf: bool = False
) -> dict[str, Any]:
    """One measurement window, with the server's CPU and (quicmeet) SFU drops;
    with ``perf``, where the server's CPU went (:class:`PerfSampler`)."""
    counters = sfu_counters(server) if kind == "quicmeet" else {}
    sampler = PerfSampler(server.proc.pid, seconds) if perf else None
    cpu_before = process_cpu_seconds(server.proc.pid)
    started = time.monotonic()
    step: dict[str, Any] = dict(await load.measure(seconds))
    server_cpu = (process_cpu_seconds(server.proc.pid) - cpu_before) / (
        time.monotonic() - started
    )
    step["server_cpu"] = round(server_cpu, 3)
    if sampler is not None:
        # perf's report takes a while: the load keeps its pace meanwhile.
        step["server_cpu_percent_by_code"] = await asyncio.to_thread(sampler.result)
    if kind == "quicmeet":
        after = sfu_counters(server)
        for name in ("sfu_dropped_queue_full", "sfu_dropped_foreign_track"):
            step[name] = after[name] - counters[name]
        sent = after["udp_datagrams_sent"] - counters["udp_datagrams_sent"]
        received = after["udp_datagrams_received"] - counters["udp_datagrams_received"]
        if step["forwarded_per_s"]:
            # What the node reads per datagram it forwards: the publishers'
            # media (a third of a read in rooms of four, each going to three
            # members) and the members' ACKs.
            step["received_per_forwarded"] = round(
                received / (step["forwarded_per_s"] * seconds), 3
            )
        if "short_datagram_packets" in after and sent:
            # The share of the node's packets its DATAGRAM short path built.
            step["short_datagram_share"] = round(
                (after["short_datagram_packets"] - counters["short_datagram_packets"])
                / sent,
                3,
            )
    forwarded = step["forwarded_per_s"]
    step["server_cpu_us_per_forwarded"] = (
        round(server_cpu / forwarded * 1e6, 1) if forwarded else None
    )
    return step


async def capacity_run(args: argparse.Namespace, kind: str) -> dict[str, object]:
    frames = pre_encode(640, 480, 30.0, 500_000, 60)
    if kind == "quicmeet":
        server = start_quicmeet_server()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="quicmeet-bench-bare-"))
        server = start_child(
            [
                str(ROOT / "bench" / "_meeting_bare.py"),
                str(workdir / "cert.pem"),
                str(workdir / "key.pem"),
                "--room-size",
                str(args.room_size),
            ],  # fmt: skip
            workdir,
        )
    load = Load(frames, 30.0, args.room_size)
    load.start()
    steps = []
    try:
        rooms = 0
        while rooms < args.max_rooms:
            load.paused = True
            for _ in range(args.rooms_step):
                if kind == "quicmeet":
                    names = [f"load{rooms:03d}m{i}" for i in range(args.room_size)]
                    tokens = await make_accounts(server.address, names)
                    await load.add_quicmeet_room(server.address, tokens)
                else:
                    await load.add_bare_room(server.host, server.port)
                rooms += 1
            load.paused = False
            for attempt in range(2):
                step = await _measure_step(
                    load, server, kind, args.step_seconds, args.perf
                )
                step = {"rooms": rooms, "attempt": attempt + 1, **step}
                steps.append(step)
                print(json.dumps({kind: step}), file=sys.stderr, flush=True)
                if _passes(step):
                    break
            if not _passes(step):
                break
    finally:
        await load.close()
        server.stop()
    passing = [s for s in steps if _passes(s)]
    best = max(passing, key=lambda s: s["forwarded_per_s"]) if passing else None
    costs = [
        s["server_cpu_us_per_forwarded"]
        for s in steps
        if s["server_cpu_us_per_forwarded"]
    ]
    return {
        "steps": steps,
        "capacity_rooms": best["rooms"] if best else 0,
        "capacity_forwarded_per_s": best["forwarded_per_s"] if best else 0,
        "limit_reached": len(passing) < len(steps),
        "server_cpu_us_per_forwarded_median": sorted(costs)[len(costs) // 2]
        if costs
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--room-size", type=int, default=4)
    parser.add_argument("--rooms-step", type=int, default=2)
    parser.add_argument("--max-rooms", type=int, default=40)
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument(
        "--perf",
        action="store_true",
        help="sample each capacity step's server with perf (linux-perf, as root)"
        " and report where its CPU went: the interpreter, crypto, kernel, ...",
    )
    args = parser.parse_args()
    if args.quick:
        args.latency_seconds = min(args.latency_seconds, 5.0)
        args.max_rooms = min(args.max_rooms, 8)
        args.step_seconds = min(args.step_seconds, 2.0)
    result: dict[str, object] = {"benchmark": "meeting", "cpus": os.cpu_count()}
    if not args.skip_latency:
        result["latency"] = latency_run(args)
    if not args.skip_capacity:
        quicmeet = asyncio.run(capacity_run(args, "quicmeet"))
        bare = asyncio.run(capacity_run(args, "bare"))
        ratio = (
            quicmeet["capacity_forwarded_per_s"] / bare["capacity_forwarded_per_s"]
            if bare["capacity_forwarded_per_s"]
            else None
        )
        q_cost = quicmeet["server_cpu_us_per_forwarded_median"]
        b_cost = bare["server_cpu_us_per_forwarded_median"]
        result["capacity"] = {
            "room_size": args.room_size,
            "video": "640x480 synthetic, about 500 kbit/s, 30 fps, pre-encoded",
            "quicmeet": quicmeet,
            "bare_aioquic": bare,
            "forwarded_ratio_vs_bare": round(ratio, 3) if ratio else None,
            "cpu_cost_ratio_bare_over_quicmeet": round(b_cost / q_cost, 3)
            if q_cost and b_cost
            else None,
            "goal_ratio": 0.5,
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
