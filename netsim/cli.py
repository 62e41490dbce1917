"""``quicmeet-netsim``: relay UDP between a client and a server over a bad network.

    quicmeet-netsim --listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 \\
        --delay 40ms --jitter 10ms --loss 2% --rate 1.5mbit --queue 300ms

Point the client at the ``--listen`` address. The link flags apply to both
directions; a scenario file (``--scenario``) can set each direction apart and
change parameters over time, and flags given with it override it in both
directions. Statistics go to standard output every ``--stats-every``, as text or
JSON lines. Malformed parameters exit with status 2 and a message naming the flag
and the form it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .config import LinkConfig, ScheduleStep, validate_schedule
from .errors import ParameterError
from .proxy import ImpairmentProxy, ProxyStats
from .scenario import load_scenario, scenario_names
from .spec import SPEC_FORMS, parse_spec
from .units import (
    DURATION_FORM,
    format_duration,
    format_percent,
    format_rate,
    format_size,
    parse_duration,
)

__all__ = ["main"]

_PROG = "quicmeet-netsim"
_ADDRESS_FORM = "HOST:PORT, such as 127.0.0.1:5000 or [::1]:5000"
# Flags that carry a link parameter: spec name and how its value looks.
_LINK_FLAGS = {
    "delay": "DURATION",
    "jitter": "DURATION[,CORR]",
    "distribution": "NAME",
    "loss": "PERCENT[,CORR]",
    "ge": "p[,r[,1-h[,1-k]]]",
    "rate": "RATE",
    "queue": "LIMIT[,LIMIT]",
    "reorder": "PERCENT[,CORR]",
    "duplicate": "PERCENT[,CORR]",
    "trace": "FILE",
}


@dataclass(frozen=True)
class _Settings:
    listen: tuple[str, int]
    upstream: tuple[str, int]
    up: LinkConfig
    down: LinkConfig
    up_schedule: tuple[ScheduleStep, ...]
    down_schedule: tuple[ScheduleStep, ...]
    seed: int
    stats_every_s: float
    stats_format: str
    duration_s: float | None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``quicmeet-netsim``."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Relay UDP between clients and a server through emulated links "
            "(netem-style delay, jitter, loss, rate, queue, reordering, "
            "duplication; Mahimahi traces). Link flags apply to both directions."
        ),
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="where clients send")
    parser.add_argument("--upstream", metavar="HOST:PORT", help="the server")
    link = parser.add_argument_group("link parameters (both directions)")
    for name, metavar in _LINK_FLAGS.items():
        # argparse formats help with %, so a literal % is written %%.
        help_text = SPEC_FORMS[name].replace("%", "%%")
        link.add_argument(f"--{name}", metavar=metavar, help=help_text)
    link.add_argument(
        "--jitter-reorders",
        action="store_true",
        help="let jitter reorder packets, as netem's time-sorted queue does "
        "(by default packets leave in the order they came in)",
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        help="a scenario file, or the name of a shipped one: "
        + ", ".join(scenario_names()),
    )
    parser.add_argument("--list-scenarios", action="store_true", help="list and exit")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random decision (0)"
    )
    parser.add_argument(
        "--stats-every",
        default="1s",
        metavar="DURATION",
        help="how often to print statistics; 0 for only at exit (1s)",
    )
    parser.add_argument(
        "--stats-format", choices=("text", "json"), default="text", help="(text)"
    )
    parser.add_argument(
        "--duration", metavar="DURATION", help="stop after this long (default: never)"
    )
    return parser


def _parse_address(text: str | None, flag: str) -> tuple[str, int]:
    if text is None:
        raise ParameterError(flag, "missing", _ADDRESS_FORM)
    host, separator, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise ParameterError(flag, f"{text!r} is not an address", _ADDRESS_FORM)
    return host, int(port)


def _settings(args: argparse.Namespace) -> _Settings:
    listen = _parse_address(args.listen, "--listen")
    upstream = _parse_address(args.upstream, "--upstream")
    spec: dict[str, Any] = {
        name: getattr(args, name)
        for name in _LINK_FLAGS
        if getattr(args, name) is not None
    }
    if args.jitter_reorders:
        spec["jitter-reorders"] = True
    changes = parse_spec(spec, label=lambda name: f"--{name}")
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        base_up, base_down = scenario.up, scenario.down
        up_schedule, down_schedule = scenario.up_schedule, scenario.down_schedule
    else:
        base_up = base_down = LinkConfig()
        up_schedule = down_schedule = ()
    up = base_up.replace(**changes)
    down = base_down.replace(**changes)
    validate_schedule(up, up_schedule)
    validate_schedule(down, down_schedule)
    stats_every_s = parse_duration(args.stats_every, "--stats-every")
    duration_s = None
    if args.duration is not None:
        duration_s = parse_duration(args.duration, "--duration")
        if duration_s == 0:
            raise ParameterError("--duration", "0 would stop at once", DURATION_FORM)
    return _Settings(
        listen=listen,
        upstream=upstream,
        up=up,
        down=down,
        up_schedule=up_schedule,
        down_schedule=down_schedule,
        seed=args.seed,
        stats_every_s=stats_every_s,
        stats_format=args.stats_format,
        duration_s=duration_s,
    )


def _correlated(value: str, correlation: float) -> str:
    return f"{value},{format_percent(correlation)}" if correlation else value


def describe(config: LinkConfig) -> str:
    """A one-line summary of the parameters that do something, written as the
    flags take them."""
    parts: list[str] = []
    if config.blackhole:
        parts.append("blackhole")
    if config.delay_s:
        parts.append(f"delay {format_duration(config.delay_s)}")
    if config.jitter_s:
        jitter = _correlated(
            format_duration(config.jitter_s), config.jitter_correlation
        )
        order = "" if config.keep_order else " (reorders)"
        parts.append(f"jitter {jitter} {config.jitter_distribution}{order}")
    if config.loss:
        parts.append(
            f"loss {_correlated(format_percent(config.loss), config.loss_correlation)}"
        )
    if config.gilbert_elliott is not None:
        ge = config.gilbert_elliott
        values = (ge.p, ge.r, ge.one_minus_h, ge.one_minus_k)
        parts.append(
            f"ge {','.join(format_percent(v) for v in values)}"
            f" (~{ge.loss_rate * 100:.3g}% loss)"
        )
    if config.duplicate:
        duplicate = _correlated(
            format_percent(config.duplicate), config.duplicate_correlation
        )
        parts.append(f"duplicate {duplicate}")
    if config.reorder:
        reorder = _correlated(
            format_percent(config.reorder), config.reorder_correlation
        )
        parts.append(f"reorder {reorder}")
    if config.rate_bps is not None:
        parts.append(f"rate {format_rate(config.rate_bps)}")
    if config.trace is not None:
        mean = format_rate(config.trace.mean_rate_bps)
        parts.append(f"trace {config.trace.source} (mean {mean})")
    limits = []
    if config.queue_delay_s is not None:
        limits.append(format_duration(config.queue_delay_s))
    if config.queue_bytes is not None:
        limits.append(format_size(config.queue_bytes))
    if config.queue_packets is not None:
        limits.append(f"{config.queue_packets}pkt")
    parts.append("queue " + (",".join(limits) or "unlimited"))
    return ", ".join(parts)


def _print_stats(
    out: TextIO, stats: ProxyStats, elapsed_s: float, fmt: str, event: str
) -> None:
    if fmt == "json":
        record = {"event": event, "elapsed_s": round(elapsed_s, 3), **stats.as_dict()}
        print(json.dumps(record), file=out, flush=True)
        return
    for name, link in (("up", stats.up), ("down", stats.down)):
        print(
            f"{elapsed_s:8.1f}s {name:<4} in {link.packets_in} out {link.packets_out}"
            f" | lost {link.dropped_loss} queue-full {link.dropped_queue}"
            f" blackhole {link.dropped_blackhole}"
            f" | dup {link.duplicated} reordered {link.reordered}"
            f" | queue {link.queued_packets} pkt (max {link.max_queued_packets}),"
            f" wait mean {link.queue_delay_mean_s * 1000:.1f}ms"
            f" max {link.queue_delay_max_s * 1000:.1f}ms",
            file=out,
        )
    print(f"{elapsed_s:8.1f}s clients {stats.clients}", file=out, flush=True)


async def _run(settings: _Settings, out: TextIO) -> None:
    proxy = ImpairmentProxy(
        settings.listen,
        settings.upstream,
        up=settings.up,
        down=settings.down,
        seed=settings.seed,
        up_schedule=settings.up_schedule,
        down_schedule=settings.down_schedule,
    )
    async with proxy:
        loop = asyncio.get_running_loop()
        started = loop.time()
        host, port = proxy.listen_address
        if settings.stats_format == "json":
            record = {
                "event": "start",
                "listen": f"{host}:{port}",
                "upstream": "{}:{}".format(*settings.upstream),
                "seed": settings.seed,
                "up": describe(settings.up),
                "down": describe(settings.down),
            }
            print(json.dumps(record), file=out, flush=True)
        else:
            upstream_host, upstream_port = settings.upstream
            print(
                f"{_PROG}: relaying {host}:{port} -> {upstream_host}:{upstream_port}"
                f" (seed {settings.seed})\n"
                f"  up:   {describe(settings.up)}\n"
                f"  down: {describe(settings.down)}",
                file=out,
                flush=True,
            )
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signal support: run to --duration
        every = settings.stats_every_s
        next_report = started + every if every else math.inf
        end = started + settings.duration_s if settings.duration_s else math.inf
        while True:
            wake = min(next_report, end)
            timeout = None if wake == math.inf else max(0.0, wake - loop.time())
            try:
                await asyncio.wait_for(stop.wait(), timeout)
                break
            except TimeoutError:
                pass
            now = loop.time()
            if now >= next_report:
                _print_stats(
                    out, proxy.stats, now - started, settings.stats_format, "stats"
                )
                next_report += every
            if now >= end:
                break
        _print_stats(
            out, proxy.stats, loop.time() - started, settings.stats_format, "final"
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until interrupted (or ``--duration``); returns the exit status.

    0 after a clean stop, 1 if a socket cannot be opened, 2 on bad parameters.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message
        return int(exit_.code or 0)
    if args.list_scenarios:
        for name in scenario_names():
            print(f"{name}: {load_scenario(name).description}")
        return 0
    try:
        settings = _settings(args)
    except ParameterError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(settings, sys.stdout))
    except OSError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
