"""``bench/adaptation.py``'s room scenario: one publisher and three
subscribers, real processes, one subscriber (``slow``) behind
``quicmeet-netsim``.

The publisher sends synthetic stamped 640x480 video at 30 fps (two
simulcast layers: 320x240 and 640x480) from loopback; two
subscribers (``fast1``, ``fast2``) receive on loopback, the third through the
relay. The same room is run twice in one call: with the relay's link
impaired (the scenario) and with a clean relay (the baseline: the same
processes and the same hop through netsim, no slow path), so the fast
subscribers' figures can be compared with a run without a slow subscriber.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _adapt_runs import Quicmeet, _first_line, _reap, _wait_all  # noqa: I001
from _common import percentile, server_stats, start_netsim, start_quicmeet_server
from meeting import make_homes

SUBSCRIBERS = ("fast1", "fast2", "slow")
MAX_RISE_TO_TOP_S = 5.0
"""When the slow subscriber's link rises, its top-layer pictures must come
within this many seconds (a user sees a blurry picture that long)."""


def room_run(link_args: list[str], seconds: float, seed: int, size: str) -> dict:
    """One run of the room; per subscriber what it received."""
    server = start_quicmeet_server()
    relay = start_netsim(server.address, link_args, seed)
    relay_started = time.time()
    system = Quicmeet(size=size, fps=30)
    work = Path(tempfile.mkdtemp(prefix="quicmeet-bench-room-"))
    try:
        addresses = {"pub": server.address, "fast1": server.address,
                     "fast2": server.address, "slow": relay.address}  # fmt: skip
        make_homes(work, server.address, addresses)
        publisher = system._meet(server.address, work / "pub", "--create",
                                 "--duration", str(seconds + 8),
                                 "--stats", str(work / "pub.json"))  # fmt: skip
        procs = [publisher]
        started: dict[str, float] = {}
        try:
            line = _first_line(work / "pub.out", publisher)
            room_id = json.loads(line)["room"]["room_id"]
            for name in SUBSCRIBERS:
                started[name] = time.time()
                procs.append(
                    system._meet(
                        addresses[name],
                        work / name,
                        "--room",
                        room_id,
                        "--video",
                        "none",
                        "--duration",
                        str(seconds),
                        "--stats",
                        str(work / f"{name}.json"),
                    )  # fmt: skip
                )
            _wait_all(procs, seconds + 90, work)
        finally:
            _reap(procs)
        sfu = {
            k: v
            for k, v in asyncio.run(server_stats(server)).items()
            if k.startswith(("sfu_frames_dropped", "sfu_frame_starts", "sfu_pacer"))
            or k in ("sfu_dropped_queue_full", "sfu_forwarded", "sfu_retransmissions")
        }
    finally:
        relay.stop()
        server.stop()
    sent = json.loads((work / "pub.json").read_text())["sent"][0]
    result: dict[str, Any] = {
        "sfu": sfu,
        "publisher_layers": [
            {k: layer[k] for k in ("layer", "width", "encoded", "frames_encoded")}
            for layer in sent.get("layers", [])
        ],
    }
    for name in SUBSCRIBERS:
        received = json.loads((work / f"{name}.json").read_text())["received"]
        result[name] = (
            _subscriber(received[0], started[name], len(sent.get("layers", [])) - 1)
            if received
            else {"error": "none"}
        )
        result[name]["started_after_link_s"] = round(started[name] - relay_started, 3)
    return result


def _start(frames: list, track: dict, started: float, top: int) -> dict[str, Any]:
    """How the subscriber started: seconds from its start to its first
    picture and to its first top-layer one, and its longest freeze in its
    first 5 s of pictures."""
    first = frames[0][0]
    switches = [t for t, layer in track.get("layer_timeline", []) if layer == top]
    top_at = next((t for t, _ in frames if switches and t >= switches[0]), None)
    early = [t for t, _ in frames if t <= first + 5]
    return {
        "first_picture_s": round(first - started, 3),
        "first_top_picture_s": None if top_at is None else round(top_at - started, 3),
        "max_freeze_first_5s": round(
            max((b - a for a, b in zip(early, early[1:], strict=False)), default=0.0),
            3,
        ),
        "layer_timeline": [
            [round(t - started, 3), layer]
            for t, layer in track.get("layer_timeline", [])
        ],
    }


def _subscriber(track: dict, started: float, top: int) -> dict[str, Any]:
    """What one subscriber got: how it started, latency after its first 2 s,
    frame rate, longest freeze, and the layer it ended on."""
    frames = track["timeline"]
    if not frames:
        return {"error": "no picture shown"}
    first = frames[0][0]
    latencies = [lat for t, lat in frames if t >= first + 2 and lat is not None]
    times = [t for t, _ in frames]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    late = [t for t in times if t >= first + 2]
    span = late[-1] - late[0] if len(late) > 1 else 0.0
    return {
        "layer": track.get("layer"),
        "layer_switches": track.get("layer_switches"),
        "width": track.get("width"),
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p95_ms": percentile(latencies, 95) if latencies else None,
        "fps": round((len(late) - 1) / span, 1) if span > 0 else 0.0,
        "max_freeze_s": round(max(gaps, default=0.0), 3),
        "max_freeze_after_2s": round(
            max((b - a for a, b in zip(late, late[1:], strict=False)), default=0.0), 3
        ),
        "frames_rendered": track.get("frames_rendered"),
        **_start(frames, track, started, top),
    }


def room_of_four(
    link_args: list[str],
    seconds: float,
    seed: int,
    size: str = "640x480",
    *,
    name: str = "room-of-four",
    rise_at: float | None = None,
) -> dict:
    """The scenario and its baseline, and the goals: the slow subscriber on
    the lowest layer with no freeze over 0.5 s after its first 2 s, the fast
    ones on the top layer with p95 and frame rate within 10% of the
    baseline's.

    With ``rise_at`` (seconds from the link's start) the slow subscriber's
    link becomes fast then: instead of ending on the lowest layer it must
    get the top layer's pictures within :data:`MAX_RISE_TO_TOP_S` of the
    rise."""
    started = time.monotonic()
    baseline = room_run([], seconds, seed, size)
    slow = room_run(link_args, seconds, seed, size)
    top = max((layer["layer"] for layer in slow["publisher_layers"]), default=0)
    got = slow["slow"]
    goals = {"slow_no_freeze_over_500ms": got.get("max_freeze_after_2s", 1e9) <= 0.5}
    if rise_at is None:
        goals["slow_on_lowest_layer"] = got.get("layer") == 0
    else:
        # The first top-layer picture after the rise, on the link's clock.
        offset = got.get("started_after_link_s", 0.0)
        tops = [at + offset for at, layer in got.get("layer_timeline", [])
                if layer == top and at + offset >= rise_at]  # fmt: skip
        got["top_after_rise_s"] = round(tops[0] - rise_at, 3) if tops else None
        got["lowest_before_rise"] = all(
            layer == 0
            for at, layer in got.get("layer_timeline", [])
            if at + offset < rise_at
        )
        goals["slow_on_lowest_layer_before_rise"] = got["lowest_before_rise"]
        goals["slow_on_top_layer_after_rise"] = (
            got["top_after_rise_s"] is not None
            and got["top_after_rise_s"] <= MAX_RISE_TO_TOP_S
            and got.get("layer") == top
        )
    for fast in ("fast1", "fast2"):
        got, base = slow[fast], baseline[fast]
        goals[f"{fast}_on_top_layer"] = got.get("layer") == top
        goals[f"{fast}_p95_within_10pct"] = (
            got.get("p95_ms") is not None
            and base.get("p95_ms") is not None
            and got["p95_ms"] <= 1.1 * base["p95_ms"]
        )
        goals[f"{fast}_fps_within_10pct"] = got.get("fps", 0) >= 0.9 * base.get(
            "fps", 0
        )
    return {
        "scenario": name,
        "system": "quicmeet",
        "seed": seed,
        "size": size,
        "elapsed_s": round(time.monotonic() - started, 1),
        "with_slow_subscriber": slow,
        "baseline_all_fast": baseline,
        "goals_met": goals,
    }
