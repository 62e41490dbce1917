"""Media that fits its link: scenarios through ``quicmeet-netsim``, real processes.

For each scenario a publisher sends synthetic stamped video at 30 fps (640x480,
or ``--source``: the encoder's ceiling at 640x480 is 2 Mbit/s, under the
capacity steps' 2.5 Mbit/s; ``docs/adaptation.md`` section 8) through
``quicmeet-netsim`` (both directions of its link impaired) to a receiver on
loopback, for the scenario's length. Reported per scenario:
utilisation of the capacity in steady state (each phase of the capacity
schedule from 5 s after its start: what the relay's up link carried, every
byte of the publisher's packets, read from the relay's own counters, so alike
for any system; ``media_utilisation``: the media payloads the system says it
sent, without the transport's headers and acknowledgements), recovery
after a capacity drop (how long until every 1 s window's glass-to-glass p95
stays under the lowest latency plus 100 ms; ``first_back_s``: until the
first such window), time from the receiver's start (process start, join,
first keyframe) to its first picture, the longest freeze after it,
glass-to-glass p50/p95, frames per second, and the goals of issue 14 met or
not. One JSON object on stdout; one PNG per scenario (capacity, estimate,
sent rate and what the link carried, the SFU's limit and the estimate's
cuts, and glass-to-glass latency over time) in ``--plots``, with the run's
time series beside it (``<scenario>-<system>-trace.json``: the estimate's
cuts by cause, probes, the SFU's limits, aioquic's queue at release, the
relay's byte counters) for diagnosis.

The runner is general: a scenario is netsim arguments and a capacity
schedule; a system (``_adapt_runs.System``) is anything that holds a call
through the relay and returns the same time series, so other systems can be
compared on identical links.

    python bench/adaptation.py                          # every scenario, ~3.5 min
    python bench/adaptation.py --scenario slow-300k     # one
    python bench/adaptation.py --virtual                # the pure stack, seconds
    python bench/adaptation.py --scenario room-of-four  # simulcast, ~1.5 min
    python bench/adaptation.py --scenario room-rising   # its slow link rises
    python bench/adaptation.py --scenario meeting-and-file  # a 1 GiB upload beside

``room-of-four`` (``_adapt_room.py``) is a room, not a call: a publisher
and three subscribers, one behind a 300 kbit/s link, run once with it and
once with every path clean (the baseline the fast subscribers' figures are
compared with). ``room-rising`` is the same room with the slow
subscriber's link rising from 300 kbit/s to 2.5 Mbit/s at 15 s: it must
leave the lowest layer for the top one within 5 s.

``--virtual`` runs the same links through the pure adaptation stack on a
virtual clock instead (``tests/codec/media/adapt_sim.py``: a model encoder
that makes exactly its target, the pacer, the estimator, a netsim ``Link``):
the same figures on any machine, for the algorithm alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _adapt_file import QuicmeetWithFile  # noqa: I001
from _adapt_room import room_of_four
from _adapt_runs import Quicmeet, Run, System
from _common import ROOT, LinkMeter, can_plot, percentile, start_netsim

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from codec.media import NO_LIMIT_BPS  # noqa: E402
from netsim import LinkConfig, ScheduleStep  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    link_args: list[str]
    capacity: list[tuple[float, float]]
    """(seconds from the link's start, bits per second) steps."""
    seconds: float
    goals: dict[str, float] = field(default_factory=dict)
    virtual_link: LinkConfig = field(default_factory=LinkConfig)
    """The same link for ``--virtual`` (the schedule comes from ``capacity``)."""
    source: str = "640x480"
    """The publisher's synthetic source (30 fps)."""


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "capacity-steps",
            "RFC 8867 5.1: 1 -> 2.5 -> 0.6 -> 1 Mbit/s at 0/40/60/80 s, "
            "50 ms one-way, 300 ms queue",
            ["--scenario", "rfc8867-5.1"],
            [(0, 1e6), (40, 2.5e6), (60, 0.6e6), (80, 1e6)],
            100,
            {"min_utilisation": 0.85, "max_recovery_s": 2.0},
            LinkConfig(delay_s=0.05, rate_bps=1e6, queue_delay_s=0.3),
        ),
        Scenario(
            "slow-300k",
            "300 kbit/s from the start, 25 ms one-way, 300 ms queue",
            ["--delay", "25ms", "--rate", "300kbit", "--queue", "300ms"],
            [(0, 300e3)],
            30,
            {"max_first_picture_s": 2.0, "max_freeze_s": 0.5, "max_p95_ms": 300},
            LinkConfig(delay_s=0.025, rate_bps=300e3, queue_delay_s=0.3),
        ),
        Scenario(
            "loss-2pct",
            "1.5 Mbit/s, 50 ms one-way (100 ms RTT), 20 ms jitter, 2% random loss",
            [
                "--delay",
                "50ms",
                "--jitter",
                "20ms",
                "--loss",
                "2%",
                "--rate",
                "1.5mbit",
                "--queue",
                "300ms",
            ],  # fmt: skip
            [(0, 1.5e6)],
            30,
            {"max_p95_ms": 250, "min_fps": 25, "max_freeze_s": 0.5},
            LinkConfig(
                delay_s=0.05,
                jitter_s=0.02,
                loss=0.02,
                rate_bps=1.5e6,
                queue_delay_s=0.3,
            ),
        ),
        Scenario(
            "meeting-and-file",
            "a call and a 1 GiB upload on the publisher's 5 Mbit/s link, "
            "25 ms one-way, 300 ms queue",
            ["--delay", "25ms", "--rate", "5mbit", "--queue", "300ms"],
            [(0, 5e6)],
            48,
            {"max_p95_ms": 300},
            LinkConfig(delay_s=0.025, rate_bps=5e6, queue_delay_s=0.3),
        ),
    )
}
"""``meeting-and-file`` runs the call of :mod:`_adapt_file` (an upload beside
it), once sent through an upload pump that knows of the meeting (as the
desktop app sends it) and once by a ``file send`` that does not."""


ROOM_SCENARIOS = {
    "room-of-four": (
        ["--delay", "25ms", "--rate", "300kbit", "--queue", "300ms"],
        25.0,
        None,
    ),
    "room-rising": (["--scenario", "capacity-rise"], 35.0, 15.0),
}
"""Room scenarios: the slow subscriber's link, the run's length (s), and when
(seconds from the link's start) that link rises, if it does (netsim's
``capacity-rise``: 300 kbit/s, then 2.5 Mbit/s at 15 s)."""


def capacity_at(scenario: Scenario, t: float) -> float:
    value = scenario.capacity[0][1]
    for at, bps in scenario.capacity:
        if t >= at:
            value = bps
    return value


def phases(scenario: Scenario) -> list[tuple[float, float, float]]:
    """(start, end, capacity) of each step of the schedule."""
    steps = scenario.capacity
    ends = [at for at, _ in steps[1:]] + [scenario.seconds]
    return [(at, end, bps) for (at, bps), end in zip(steps, ends, strict=True)]


def analyse(
    scenario: Scenario, run: Run, t0: float, link: LinkMeter | None = None
) -> dict[str, Any]:
    """The figures of one run; times relative to the link's start ``t0``.
    With the relay's ``link`` meter, utilisation is what its up link carried
    (every byte of the publisher's packets: what the path's capacity was used
    for, measured alike for any system); ``media_utilisation`` is the
    system's own count of the media it sent (payloads without the transport's
    headers and acknowledgements)."""
    sent = [(t - t0, bps) for t, bps in run.sent]
    frames = [(t - t0, lat) for t, lat in run.frames]
    joined = run.receiver_started_at - t0
    result: dict[str, Any] = {}
    if not frames:
        return {"error": "no picture shown"}
    first = frames[0][0]
    result["first_picture_s"] = round(first - joined, 2)
    times = [t for t, _ in frames]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    result["max_freeze_s"] = round(max(gaps, default=0.0), 3)
    result["freezes_over_500ms"] = sum(g > 0.5 for g in gaps)
    measured = [lat for t, lat in frames if t >= first + 2 and lat is not None]
    result["p50_ms"] = percentile(measured, 50) if measured else None
    result["p95_ms"] = percentile(measured, 95) if measured else None
    span = times[-1] - times[0]
    result["fps"] = round((len(times) - 1) / span, 1) if span > 0 else 0.0
    used = carried = capacity_used = 0.0
    carried_known = link is not None
    per_phase = []
    for begin, end, bps in phases(scenario):
        window = [r for t, r in sent if begin + 5 <= t < end]
        if end - begin < 10 or not window:
            continue
        mean = sum(window) / len(window)
        phase = {"from_s": begin, "capacity_bps": bps, "sent_bps": round(mean),
                 "media_utilisation": round(mean / bps, 3)}  # fmt: skip
        link_bps = link.up_bps(begin + 5, end) if link is not None else None
        if link_bps is None:
            carried_known = False
            phase["utilisation"] = phase["media_utilisation"]
        else:
            phase["link_bps"] = round(link_bps)
            phase["utilisation"] = round(link_bps / bps, 3)
            carried += link_bps * (end - begin - 5)
        per_phase.append({**phase, **_diagnosis(run, t0, begin, end)})
        used += mean * (end - begin - 5)
        capacity_used += bps * (end - begin - 5)
    result["phases"] = per_phase
    if capacity_used:
        result["media_utilisation"] = round(used / capacity_used, 3)
        result["utilisation"] = round(
            (carried if carried_known else used) / capacity_used, 3
        )
    latencies = [lat for _, lat in frames if lat is not None]
    floor = percentile(latencies, 5) if latencies else None
    result["lowest_latency_ms"] = floor
    recoveries: list[float | None] = []
    first_back: list[float | None] = []
    for (_, before), (begin, end, bps) in zip(
        scenario.capacity, phases(scenario)[1:], strict=False
    ):
        if bps < before and floor is not None:
            recoveries.append(_recovery(frames, begin, end, floor + 100))
            first_back.append(_first_back(frames, begin, end, floor + 100))
    if recoveries:
        result["recovery_s"] = recoveries
        result["first_back_s"] = first_back
    return result


def _diagnosis(run: Run, t0: float, begin: float, end: float) -> dict[str, Any]:
    """Why a phase (seconds from ``t0``) went as it did: the estimate's cuts
    by cause and its probes over the whole phase, and the mean estimate and
    SFU limit in its steady state (from 5 s after its start)."""
    events = [(what, bps) for t, what, bps in run.events if begin <= t - t0 < end]
    counts: dict[str, int] = {}
    for what, _ in events:
        counts[what] = counts.get(what, 0) + 1
    steady = [b for t, b in run.estimate if begin + 5 <= t - t0 < end]
    steady_limits = [b for t, b in run.limit if begin + 5 <= t - t0 < end]
    limits = [b for b in steady_limits if b < NO_LIMIT_BPS]
    return {
        "events": counts,
        "estimate_bps": round(sum(steady) / len(steady)) if steady else None,
        # the mean of the limits the SFU set, and how much of the time it set none
        "sfu_limit_bps": round(sum(limits) / len(limits)) if limits else None,
        "sfu_unlimited_share": (
            round(1 - len(limits) / len(steady_limits), 2) if steady_limits else None
        ),
    }


def _recovery(
    frames: list[tuple[float, float | None]], drop: float, end: float, limit: float
) -> float | None:
    """Seconds after ``drop`` from which every 1 s window until ``end`` has a
    glass-to-glass p95 under ``limit`` ms (None: never)."""
    windows = []
    t = drop
    while t + 1 <= end:
        lats = [lat for s, lat in frames if t <= s < t + 1 and lat is not None]
        windows.append((t, percentile(lats, 95) if lats else None))
        t += 0.25
    recovered: float | None = None
    for at, p95 in windows:
        if p95 is None or p95 >= limit:
            recovered = None
        elif recovered is None:
            recovered = at - drop
    return None if recovered is None else round(recovered, 2)


def _first_back(
    frames: list[tuple[float, float | None]], drop: float, end: float, limit: float
) -> float | None:
    """Seconds after ``drop`` to the first 1 s window (every 0.25 s) whose
    glass-to-glass p95 is under ``limit`` ms: when the drop's own queue was
    gone, whatever came later in the phase (None: never)."""
    t = drop
    while t + 1 <= end:
        lats = [lat for s, lat in frames if t <= s < t + 1 and lat is not None]
        if lats and percentile(lats, 95) < limit:
            return round(t - drop, 2)
        t += 0.25
    return None


def goals_met(result: dict[str, Any], goals: dict[str, float]) -> dict[str, bool]:
    checks = {
        "min_utilisation": lambda v: (result.get("utilisation") or 0) >= v,
        "max_recovery_s": lambda v: all(
            r is not None and r <= v for r in result.get("recovery_s", [None])
        ),
        "max_first_picture_s": lambda v: result.get("first_picture_s", 1e9) <= v,
        "max_freeze_s": lambda v: result.get("max_freeze_s", 1e9) <= v,
        "max_p95_ms": lambda v: (result.get("p95_ms") or 1e9) < v,
        "min_fps": lambda v: result.get("fps", 0) >= v,
    }
    return {name: checks[name](value) for name, value in goals.items()}


def plot(
    scenario: Scenario, run: Run, t0: float, path: Path, link: LinkMeter | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    steps = [at for at, _ in scenario.capacity] + [scenario.seconds]
    values = [bps for _, bps in scenario.capacity]
    rates.step(steps, [v / 1e3 for v in values] + [values[-1] / 1e3],
               where="post", label="capacity", color="black")  # fmt: skip
    rates.plot([t - t0 for t, _ in run.estimate],
               [b / 1e3 for _, b in run.estimate], label="estimate")  # fmt: skip
    rates.plot([t - t0 for t, _ in run.sent],
               [b / 1e3 for _, b in run.sent], label="sent", alpha=0.6)  # fmt: skip
    if link is not None and len(link.samples) > 1:
        pairs = zip(link.samples, link.samples[1:], strict=False)
        carried = [((a + b) / 2, (ub - ua) * 8 / (b - a))
                   for (a, ua, _), (b, ub, _) in pairs if b > a]  # fmt: skip
        rates.plot([t for t, _ in carried], [r / 1e3 for _, r in carried],
                   label="link carried", alpha=0.6)  # fmt: skip
    limits = [(t, b) for t, b in run.limit if b < NO_LIMIT_BPS]  # the top: none
    if limits:
        rates.step([t - t0 for t, _ in limits], [b / 1e3 for _, b in limits],
                   where="post", label="SFU limit", alpha=0.6)  # fmt: skip
    cuts = [t - t0 for t, what, _ in run.events if not what.startswith("probe")]
    if cuts:
        rates.plot(cuts, [0] * len(cuts), "|", color="red", label="cuts")
    rates.set(ylabel="kbit/s", title=f"{scenario.name}: {scenario.description}")
    rates.legend(fontsize=8)
    latency.plot([t - t0 for t, lat in run.frames if lat is not None],
                 [lat for _, lat in run.frames if lat is not None],
                 ".", markersize=2)  # fmt: skip
    latency.set(xlabel="seconds", ylabel="glass-to-glass (ms)")
    for axis in (rates, latency):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_scenario(system: System, scenario: Scenario, seed: int, plots: Path) -> dict:
    server = Quicmeet().server()
    netsim = start_netsim(server.address, scenario.link_args, seed, stats_every_s=0.5)
    t0 = time.time()
    link = LinkMeter(netsim)
    try:
        run = system.run(netsim, scenario.seconds - (time.time() - t0), server)
    finally:
        netsim.stop()
        server.stop()
        link.join()
    result = {"scenario": scenario.name, "system": system.name, "seed": seed,
              **analyse(scenario, run, t0, link), "counters": run.extra}  # fmt: skip
    result["goals"] = scenario.goals
    result["goals_met"] = goals_met(result, scenario.goals)
    plots.mkdir(parents=True, exist_ok=True)
    if can_plot():
        plot(scenario, run, t0, plots / f"{scenario.name}-{system.name}.png", link)
    trace = {"t0": t0, "sent": run.sent, "estimate": run.estimate,
             "limit": run.limit, "events": run.events, "trace": run.trace,
             "frames": run.frames, "link": link.samples}  # fmt: skip
    (plots / f"{scenario.name}-{system.name}-trace.json").write_text(json.dumps(trace))
    return result


def run_virtual(scenario: Scenario) -> dict:
    """The scenario's link through the pure stack on a virtual clock."""
    from tests.codec.media.adapt_sim import AdaptSim, between

    schedule = [
        ScheduleStep(at, {"rate_bps": bps}) for at, bps in scenario.capacity[1:]
    ]
    sim = AdaptSim(scenario.virtual_link, schedule, return_delay_s=0.05)
    samples = sim.run(scenario.seconds)
    per_phase = []
    used = offered = 0.0
    for begin, end, bps in phases(scenario):
        window = between(samples, begin + 5, end)
        mean = sum(s.sent_bps for s in window) / len(window)
        per_phase.append({"from_s": begin, "capacity_bps": bps,
                          "utilisation": round(mean / bps, 3)})  # fmt: skip
        used += mean * (end - begin - 5)
        offered += bps * (end - begin - 5)
    delays = [s.delay_s * 1000 for s in samples if s.time >= 5]
    base_ms = scenario.virtual_link.delay_s * 1000
    recoveries = []
    for (_, before), (begin, end, bps) in zip(
        scenario.capacity, phases(scenario)[1:], strict=False
    ):
        if bps < before:
            recoveries.append(_virtual_recovery(between(samples, begin, end), begin,
                                                base_ms + 100))  # fmt: skip
    return {
        "scenario": scenario.name,
        "system": "pure stack, virtual clock",
        "phases": per_phase,
        "utilisation": round(used / offered, 3),
        "one_way_delay_p95_ms": round(percentile(delays, 95), 1),
        "one_way_delay_max_ms": round(max(delays), 1),
        "recovery_s": recoveries,
        "frames_skipped_at_source": sim.frames_skipped,
    }


def _virtual_recovery(samples: list, drop: float, limit_ms: float) -> float | None:
    """Seconds after ``drop`` until the highest one-way delay of every 100 ms
    stays under ``limit_ms`` for a second (None: never)."""
    calm_since: float | None = None
    for sample in samples:
        if sample.delay_s * 1000 >= limit_ms:
            calm_since = None
        elif calm_since is None:
            calm_since = sample.time
        if calm_since is not None and sample.time - calm_since >= 1.0:
            return round(calm_since - drop, 2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario", action="append", choices=sorted([*SCENARIOS, *ROOM_SCENARIOS])
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plots", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--virtual", action="store_true")
    parser.add_argument(
        "--file-controller",
        action="append",
        choices=("pump", "scavenger", "scavenger-fixed", "media"),
        help="meeting-and-file: how the file is sent, in this order (repeatable; "
        "default: pump, then media; bench/_adapt_file.py)",
    )
    parser.add_argument(
        "--source", help="the publisher's source, WxH (default: the scenario's)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    results = []
    for name in args.scenario or [*SCENARIOS, *ROOM_SCENARIOS]:
        if name in ROOM_SCENARIOS:
            if args.virtual:
                continue  # a room needs the real thing
            link, seconds, rise_at = ROOM_SCENARIOS[name]
            result = room_of_four(link, seconds, args.seed, name=name, rise_at=rise_at)
        elif args.virtual:
            result = run_virtual(SCENARIOS[name])
        elif name == "meeting-and-file":
            for controller in args.file_controller or ("pump", "media"):
                system = QuicmeetWithFile(controller)
                result = run_scenario(system, SCENARIOS[name], args.seed, args.plots)
                print(json.dumps(result), file=sys.stderr, flush=True)
                results.append(result)
            continue
        else:
            scenario = SCENARIOS[name]
            source = args.source or scenario.source
            result = run_scenario(Quicmeet(source), scenario, args.seed, args.plots)
            result["source"] = source
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    print(json.dumps({"elapsed_s": round(time.monotonic() - started, 1),
                      "plots": str(args.plots), "results": results},
                     indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
