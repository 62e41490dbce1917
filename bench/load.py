"""Load generator: many logged-in QUIC connections, few UDP sockets, one node.

The users and their session tokens are written straight into the server's
database before it starts, so logging in is a token resume (no Argon2 per
user); users 2k and 2k+1 are friends. ``--procs`` generator processes
(bench/_load_clients.py) each carry their share of the users over
``--sockets`` UDP sockets.

The connections are opened in ``--steps`` steps up to ``--connections``, at
most ``--ramp`` new ones a second and ``--in-flight`` logins under way per
process; they resume, sync their chat and stay idle, keeping their connections
alive as the client core does for the node's ``--server-idle-timeout`` (60 s by
default: a keepalive every 20 s, every second one a PING and the others
ACK-only packets the node does not answer; under 30 s, a PING every 1.5 s).
After each step the server's memory and its CPU while the connections idle
for ``--settle`` seconds are read, then ``--chat-rate`` messages a second go
from random users to their friends for ``--duration`` seconds. ``--rooms``
then starts meetings of four whose host publishes ``--fps`` one-datagram
video frames a second. Reports connections held, the
server's memory per connection, chat (and media) latency percentiles, CPU
seconds of the server and of each generator (which one limited the run),
whose UDP sockets overflowed (the node's or the generators'), the worst loop
stall and full collection of the node and of the generators, and errors;
``--plot`` writes memory and latency against connections as a PNG.
``--stall`` then stops the node that many seconds (SIGSTOP) and watches it
come back for ``--recover`` seconds: its CPU, its socket's queue, what it
shed, and chat after it. ``--churn`` has that share of the users log off at
once and watches the node for ``--churn-watch`` seconds: its worst stall,
its collector's passes, what the ended connections left.

The generators stand in for other machines: they run at ``--generator-nice``
(10), so that on a machine they share the node gets the CPU first, and they
freeze their heap as the node does (``server.heap``; one process keeps
thousands of users' objects, and a full collection of them stalled its loop
for seconds). The ramp backs off while the machine's CPU or the node's is
over 85 % busy, before the node's replies come late enough for both ends'
probe timers to fire (``bench/_load_clients.next_rate``). The generators
read and send on the node's I/O layer (``udpio.endpoint``: batched system
calls, and shedding while behind, as the node does, so that a generator
behind does not keep every connection probing), on uvloop; they build their
keepalive PINGs on a short path (``udpio.short_path.send_ping``) and their
ACK-only keepalives on the client core's (``udpio.short_acks``), receive
the node's ACKs on the client core's (``udpio.short_receive``) and build
nothing after them (``udpio.short_path.nothing_to_send``).
Prints one JSON object (and each step, as it is measured, on stderr).

    python bench/load.py --connections 5000 --procs 2 --chat-rate 200 --plot load.png
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

from _common import (  # noqa: I001
    ROOT,
    Child,
    can_plot,
    percentile,
    process_cpu_seconds,
    server_stats,
    start_quicmeet_server,
    stat_grew,
    udp_socket_drops,
    udp_socket_queued,
)
from _load_clients import serve

# -- seeding the database --------------------------------------------------------


async def seed(data_dir: Path, users: int) -> list[bytes]:
    """Users ``load000000``... with one session token each; return the tokens."""
    from server.storage import Storage
    from server.storage.models import AuthSession, Friendship, User

    storage = Storage(None, data_dir)
    tokens = [secrets.token_bytes(32) for _ in range(users)]

    def fill() -> None:
        now = int(time.time() * 1000)
        db = User._meta.database
        with db.atomic():
            for start in range(0, users, 500):
                User.insert_many(
                    [
                        {
                            "username": f"load{i:06d}",
                            "password_hash": "!",  # no password logs in
                            "display_name": f"load {i}",
                            "created_ms": now,
                        }
                        for i in range(start, min(users, start + 500))
                    ]
                ).execute()
            ids = [u.id for u in User.select(User.id).order_by(User.id)]
            for start in range(0, users, 500):
                AuthSession.insert_many(
                    [
                        {
                            "user": ids[i],
                            "token_hash": hashlib.sha256(tokens[i]).hexdigest(),
                            "created_ms": now,
                            "expires_ms": now + 86_400_000,
                        }
                        for i in range(start, min(users, start + 500))
                    ]
                ).execute()
            pairs = [(ids[i], ids[i ^ 1], now) for i in range(users) if i ^ 1 < users]
            for start in range(0, len(pairs), 500):
                Friendship.insert_many(
                    pairs[start : start + 500],
                    fields=[Friendship.user, Friendship.friend, Friendship.since_ms],
                ).execute()

    await storage.start()
    await storage.run(fill)
    storage.close()
    return tokens


# -- the run -------------------------------------------------------------------------


def start_generators(
    server: tuple[str, int], tokens: list[bytes], args: argparse.Namespace
) -> list[Connection]:
    """``--procs`` generator processes; friends (2k, 2k+1) share a process."""
    context = multiprocessing.get_context("spawn")
    pipes = []
    for p in range(args.procs):
        users = [(i, t) for i, t in enumerate(tokens) if (i // 2) % args.procs == p]
        ours, theirs = context.Pipe()
        context.Process(
            target=serve,
            args=(
                theirs,
                server,
                users,
                args.sockets,
                args.in_flight,
                args.generator_nice,
            ),
            daemon=True,
        ).start()
        pipes.append(ours)
    return pipes


async def ask(pipes: list[Connection], command: str, *args: object) -> list[dict]:
    """Send a command to every generator and wait for all their answers."""
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        pipe.send((command, args))
    return list(
        await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in pipes))
    )


def udp_receive_drops() -> int:
    """Datagrams this machine's UDP sockets dropped for a full receive buffer
    (all sockets: other work on the machine counts too)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


def ended_by_key(answers: list[dict]) -> dict[str, int]:
    """The generators' connections that ended unasked, their node keys
    counted: how many, over how many keys, most in one key."""
    keys: Counter[int] = Counter()
    for answer in answers:
        keys.update(answer.get("ended_keys", {}))
    return {
        "ended": sum(keys.values()),
        "keys": len(keys),
        "most_in_one_key": max(keys.values(), default=0),
    }


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


async def chat_round(
    pipes: list[Connection], args: argparse.Namespace
) -> tuple[list[dict], dict]:
    """Chat at ``--chat-rate`` for ``--duration`` seconds between friends who
    are up: the generators' answers, and what arrived and how fast."""
    chats = await ask(pipes, "chat", args.chat_rate / args.procs, args.duration)
    latencies = [x for c in chats for x in c["latencies"]]
    return chats, {
        "chat_sent": sum(c["sent"] for c in chats),
        "chat_received": len(latencies),
        "chat_p50_ms": ms(latencies, 50),
        "chat_p99_ms": ms(latencies, 99),
    }


async def stall_and_recover(
    server: Child,
    pipes: list[Connection],
    generator_ports: set[int],
    args: argparse.Namespace,
) -> dict:
    """Stop the node for ``--stall`` seconds (SIGSTOP: what a paused virtual
    machine, a swapped-out process or a stuck disk look like from outside),
    then watch it each second for ``--recover`` seconds: its CPU, what waits
    in its socket, what the socket dropped; then chat as after each step."""
    port = {server.port}
    pid = server.proc.pid
    cpu = process_cpu_seconds(pid)
    await asyncio.sleep(3.0)
    idle_cores = (process_cpu_seconds(pid) - cpu) / 3.0
    idle = await ask(pipes, "idle")
    held_before = sum(a["held"] for a in idle)
    generators = [a["pid"] for a in idle]
    drops = udp_socket_drops(port)
    generator_drops = udp_socket_drops(generator_ports)
    server.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(args.stall)
        queued_at_resume = udp_socket_queued(port)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    seconds: list[dict] = []
    start = time.perf_counter()
    cpu = process_cpu_seconds(pid)
    generator_cpu = sum(process_cpu_seconds(g) for g in generators)
    # The node's counters every 5 s only: a stats report costs the node a
    # little work, which each second would be a load of its own.
    counts = await server_stats(server)
    for second in range(1, int(args.recover) + 1):
        await asyncio.sleep(max(0.0, start + second - time.perf_counter()))
        now_cpu = process_cpu_seconds(pid)
        now_generator_cpu = sum(process_cpu_seconds(g) for g in generators)
        seconds.append(
            {
                "cores": round(now_cpu - cpu, 2),
                "queued_kib": udp_socket_queued(port) // 1024,
                "drops": udp_socket_drops(port) - drops,
                # The generators: they stand in for the clients' machines,
                # so a generator behind is a fault of the run, not the node.
                "generator_cores": round(now_generator_cpu - generator_cpu, 2),
                "generator_queued_kib": udp_socket_queued(generator_ports) // 1024,
                "generator_drops": udp_socket_drops(generator_ports) - generator_drops,
            }
        )
        if second % 5 == 0:
            # What the node read (and handed on) and shed, and sent: all it
            # sent, and of that its packets of an ACK alone; a second's worth
            # over the last five.
            now_counts = await server_stats(server)
            seconds[-1].update(
                {
                    name: round((now_counts[key] - counts[key]) / 5)
                    for name, key in (
                        ("received_per_s", "udp_datagrams_received"),
                        ("shed_per_s", "udp_datagrams_shed"),
                        ("sent_per_s", "udp_datagrams_sent"),
                        ("sent_ack_only_per_s", "short_acks_sent"),
                    )
                    if key in counts
                }
            )
            counts = now_counts
        cpu, generator_cpu = process_cpu_seconds(pid), now_generator_cpu
    # Back: from this second on, nothing waits in the socket (under 64 KiB,
    # a few milliseconds of the node's work) and over every 5 s the node is
    # within a tenth of a core of what the idle connections cost it before.
    cores = [s["cores"] for s in seconds]
    settled = [
        s["queued_kib"] < 64
        and sum(cores[i : i + 5]) / len(cores[i : i + 5]) <= idle_cores + 0.1
        for i, s in enumerate(seconds)
    ]
    recovered = next((i + 1 for i in range(len(settled)) if all(settled[i:])), None)
    held_after = sum(a["held"] for a in await ask(pipes, "idle"))
    _, chat = await chat_round(pipes, args)
    stats = await server_stats(server)
    return {
        "stall_s": args.stall,
        "idle_server_cores_before": round(idle_cores, 3),
        "held_before": held_before,
        "held_after": held_after,
        "queued_kib_at_resume": queued_at_resume // 1024,
        "recovered_after_s": recovered,
        "per_second": seconds,
        **chat,
        "datagrams_shed": stats.get("udp_datagrams_shed"),
    }


async def run(args: argparse.Namespace, root: Path = ROOT) -> dict:
    """One load run against the server of the checkout at ``root``."""
    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-load-"))
    tokens = await seed(workdir / "data", args.connections)
    server: Child = start_quicmeet_server(
        [
            "--chat-rate",
            "1000000",
            "--idle-timeout",
            str(args.server_idle_timeout),
            *args.server_arg,
        ],
        root=root,
        workdir=workdir,
    )
    steps: list[dict] = []
    pipes: list[Connection] = []
    try:
        pipes = start_generators((server.host, server.port), tokens, args)
        started = await ask(pipes, "idle")
        generator_ports = {p for a in started for p in a["ports"]}
        generator_shed = sum(a["shed"] for a in started)
        await asyncio.sleep(1.0)
        rss_idle = server.rss_kib()
        for step in range(1, args.steps + 1):
            target = args.connections * step // args.steps
            per_proc = -(-target // args.procs)
            server_cpu = process_cpu_seconds(server.proc.pid)
            drops = udp_receive_drops()
            node_drops = udp_socket_drops({server.port})
            generator_drops = udp_socket_drops(generator_ports)
            stats_before = await server_stats(server)  # restarts the worst figures
            answers = await ask(
                pipes,
                "ramp",
                per_proc,
                args.ramp / args.procs,
                args.timeout,
                args.reconnect,
                server.proc.pid,
            )
            held = sum(a["held"] for a in answers)
            logins = [x for a in answers for x in a["login_s"]]
            handshakes = [x for a in answers for x in a["handshake_s"]]
            pending = sum(a["pending"] for a in answers)
            # The settle is idle: what holding the connections costs.
            idle_cpu = process_cpu_seconds(server.proc.pid)
            idle_before = await ask(pipes, "idle")
            pings = sum(a["pings"] for a in idle_before)
            beats = sum(a["pings"] + a["keepalive_acks"] for a in idle_before)
            sent = sum(a["sent"] for a in idle_before)
            idle_started = time.perf_counter()
            await asyncio.sleep(args.settle)
            idle_s = time.perf_counter() - idle_started
            idle = await ask(pipes, "idle")
            idle_cpu = process_cpu_seconds(server.proc.pid) - idle_cpu
            beats = sum(a["pings"] + a["keepalive_acks"] for a in idle) - beats
            pings = sum(a["pings"] for a in idle) - pings
            sent = sum(a["sent"] for a in idle) - sent
            rss = server.rss_kib()
            stats = await server_stats(server)  # over the ramp and the settle
            chats, chat = await chat_round(pipes, args)
            before = (
                steps[-1] if steps else {"connections": 0, "server_rss_kib": rss_idle}
            )
            added = held - before["connections"]
            steps.append(
                {
                    "connections": held,
                    "still_logging_in": pending,
                    "ramp_s": round(max(a["ramp_s"] for a in answers), 1),
                    # New logins a second the ramp managed, and how often it
                    # backed off (the machine's or the node's CPU nearly all
                    # busy, slow handshakes, overflowing sockets, a
                    # generator's loop behind); how often for the CPU among
                    # them.
                    "ramp_per_s": round(
                        sum(a["opened"] / max(a["ramp_s"], 1e-9) for a in answers), 1
                    ),
                    "ramp_backoffs": sum(a["rate_cuts"] for a in answers),
                    "ramp_backoffs_busy": sum(a["busy_cuts"] for a in answers),
                    # Users whose connection had ended (an idle timeout while
                    # a generator or the node was behind) logging in again.
                    "reopened": sum(a["reopened"] for a in answers),
                    "handshake_p50_p99_s": [
                        round(percentile(handshakes, q), 2) for q in (50, 99)
                    ],
                    "login_p50_p99_s": [
                        round(percentile(logins, q), 2) for q in (50, 99)
                    ],
                    "server_rss_kib": rss,
                    "server_kib_per_connection": round((rss - rss_idle) / held, 2)
                    if held
                    else None,
                    "marginal_kib_per_connection": round(
                        (rss - before["server_rss_kib"]) / added, 2
                    )
                    if added
                    else None,
                    # Keepalives: PINGs, and (for a node with a long idle
                    # timeout) the ACK-only packets between them, which the
                    # node does not answer.
                    "idle_keepalives_per_s": round(beats / idle_s, 1),
                    "idle_pings_per_s": round(pings / idle_s, 1),
                    # Over 1: PINGs repeated (their ACK later than their
                    # probe timeout: a node or a generator behind), or ACKs
                    # of the node's path MTU confirmations (a minute after
                    # each login, so within a minute of a ramp).
                    "idle_datagrams_per_keepalive": round(sent / beats, 3)
                    if beats
                    else None,
                    "idle_server_cores": round(idle_cpu / idle_s, 3),
                    # What the generators spend on the same PINGs and ACKs.
                    "idle_generator_cores": round(
                        sum(
                            a["cpu_total_s"] - b["cpu_total_s"]
                            for a, b in zip(idle, idle_before, strict=True)
                        )
                        / idle_s,
                        3,
                    ),
                    "generator_rss_mib": [round(a["rss_kib"] / 1024) for a in idle],
                    **chat,
                    "server_cpu_s": round(
                        process_cpu_seconds(server.proc.pid) - server_cpu, 1
                    ),
                    "generator_cpu_s": [
                        round(a["cpu_s"] + c["cpu_s"], 1)
                        for a, c in zip(answers, chats, strict=True)
                    ],
                    "errors": sum(c["errors"] for c in chats),
                    # Connections that ended unasked since the start, by the
                    # node's key: a few keys with many each point at standing
                    # queues that shed the same connections for the node's
                    # idle timeout, many keys with one each at chance.
                    "ended_by_key": ended_by_key(chats),
                    "udp_receive_buffer_drops": udp_receive_drops() - drops,
                    # Whose socket overflowed: the node's, or the generators'
                    # (a generator that falls behind loses the node's replies).
                    "udp_drops_node": udp_socket_drops({server.port}) - node_drops,
                    "udp_drops_generators": udp_socket_drops(generator_ports)
                    - generator_drops,
                    # What they shed unread while behind (_load_clients.
                    # MAX_RECEIVE_DELAY_S), as a node sheds.
                    "generator_datagrams_shed": sum(c["shed"] for c in chats)
                    - generator_shed,
                    "generator_worst_loop_stall_ms": max(
                        a["worst_loop_stall_ms"] for a in (*answers, *idle, *chats)
                    ),
                    "generator_gc_worst_full_pause_ms": max(
                        a["gc_worst_full_pause_ms"] for a in (*answers, *idle, *chats)
                    ),
                    # That pass's own CPU (the generators run niced).
                    "generator_gc_worst_full_pause_cpu_ms": max(
                        (*answers, *idle, *chats),
                        key=lambda a: a["gc_worst_full_pause_ms"],
                    )["gc_worst_full_pause_cpu_ms"],
                    # The node's loop over the ramp and the settle: its worst
                    # stall, and the garbage collector's full passes (each
                    # walks every object the node keeps; older builds: None).
                    "worst_loop_stall_ms": stats.get("worst_loop_stall_ms"),
                    "gc_full_collections": stat_grew(
                        stats, stats_before, "gc_full_collections"
                    ),
                    "gc_worst_full_pause_ms": stats.get("gc_worst_full_pause_ms"),
                    # Datagrams the node dropped unread over the ramp and the
                    # settle: waited past its limit, or a standing queue's
                    # share of connections left unserved (older: None).
                    "datagrams_shed": stat_grew(
                        stats, stats_before, "udp_datagrams_shed"
                    ),
                    # Of them, new connections' first flights (older: None).
                    "new_connection_datagrams_shed": stat_grew(
                        stats, stats_before, "udp_new_connection_datagrams_shed"
                    ),
                    # New connections asked for a QUIC Retry first: the node
                    # had as many unfinished handshakes as its limit (older:
                    # None).
                    "retries_sent": stat_grew(stats, stats_before, "quic_retries_sent"),
                    # That pass's own CPU (well under its pause: the node
                    # waited for a core) and what it freed (older: None).
                    "gc_worst_full_pause_cpu_ms": stats.get(
                        "gc_worst_full_pause_cpu_ms"
                    ),
                    "gc_worst_full_collected": stats.get("gc_worst_full_collected"),
                    # The heap freezer's whole-heap passes, and the ended
                    # connections refcounting freed or did not (since the
                    # start; older builds: None).
                    "gc_reclaims": stats.get("gc_reclaims"),
                    "gc_worst_reclaim_ms": stats.get("gc_worst_reclaim_ms"),
                    "gc_released_connections": stats.get("gc_released_connections"),
                    "gc_stuck_connections": stats.get("gc_stuck_connections"),
                    # Packets the node took no further work for after their
                    # receipt (ACK-only keepalives, most of them) over the
                    # ramp and the settle (older builds: None).
                    "quiet_packets_received": stat_grew(
                        stats, stats_before, "quiet_packets_received"
                    ),
                }
            )
            generator_shed = sum(c["shed"] for c in chats)
            print(json.dumps(steps[-1]), file=sys.stderr, flush=True)
        stall = (
            await stall_and_recover(server, pipes, generator_ports, args)
            if args.stall
            else {}
        )
        if stall:
            print(json.dumps(stall), file=sys.stderr, flush=True)
        churn = await churn_and_watch(server, pipes, args) if args.churn else {}
        if churn:
            print(json.dumps(churn), file=sys.stderr, flush=True)
        meeting: dict = {}
        if args.rooms:
            await ask(pipes, "meet", -(-args.rooms // args.procs), args.fps)
            await asyncio.sleep(args.duration)
            media = [x for a in await ask(pipes, "media") for x in a["latencies"]]
            meeting = {
                "rooms": args.rooms,
                "fps": args.fps,
                "datagrams_received": len(media),
                "p50_ms": ms(media, 50),
                "p99_ms": ms(media, 99),
            }
        final = await ask(pipes, "stop")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    errors = [e for a in final for e in a["errors"]]
    last = steps[-1]
    result = {
        "connections": args.connections,
        "procs": args.procs,
        "sockets_per_proc": args.sockets,
        "server_rss_idle_kib": rss_idle,
        "steps": steps,
        "stall": stall,
        "churn": churn,
        "meeting": meeting,
        "errors": len(errors),
        "first_errors": errors[:5],
        "goals": {
            "connections": 100_000,
            "kib_per_connection_max": 30,
            "met": last["connections"] >= 100_000
            and (last["server_kib_per_connection"] or 99) < 30,
        },
    }
    return result


async def run_all(args: argparse.Namespace) -> dict:
    """The run, and the same run against ``--baseline``'s server after it."""
    # Stopped (timeout, ^C from a script): still stop the server we started.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    result = await run(args)
    runs = {"this": result["steps"]}
    if args.baseline:
        result["baseline"] = await run(args, args.baseline.resolve())
        runs["baseline"] = result["baseline"]["steps"]
    if args.plot:
        plot(runs, args.plot)
    return result


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    """Server memory per connection and chat latency against connections."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, lat) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for name, steps in runs.items():
        xs = [s["connections"] for s in steps]
        mib = [s["server_rss_kib"] / 1024 for s in steps]
        mem.plot(xs, mib, "o-", label=f"{name}: server RSS")
        lat.plot(xs, [s["chat_p50_ms"] for s in steps], "o-", label=f"{name}: p50")
        lat.plot(xs, [s["chat_p99_ms"] for s in steps], "s--", label=f"{name}: p99")
    mem.set_ylabel("server RSS (MiB)")
    mem.legend()
    lat.set_ylabel("chat latency (ms)")
    lat.set_xlabel("idle logged-in connections")
    lat.legend()
    fig.suptitle("quicmeet: one node under bench/load.py")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def churn_and_watch(
    server: Child, pipes: list[Connection], args: argparse.Namespace
) -> dict:
    """Have ``--churn`` of the users log off at once (their clients close),
    then watch the node for ``--churn-watch`` seconds: its worst loop stall,
    the collector's passes and the heap freezer's whole-heap reclaims, the
    ended connections refcounting freed (or not), its memory; then chat."""
    pid = server.proc.pid
    before = await server_stats(server)  # the stall figures restart here
    rss_before = server.rss_kib()
    drops = udp_socket_drops({server.port})
    cpu = process_cpu_seconds(pid)
    closed = sum(a["closed"] for a in await ask(pipes, "churn", args.churn))
    await asyncio.sleep(args.churn_watch)
    cpu = process_cpu_seconds(pid) - cpu
    stats = await server_stats(server)
    _, chat = await chat_round(pipes, args)

    def grown(key: str) -> int | None:
        return stats[key] - before[key] if key in stats else None

    return {
        "closed": closed,
        "held_after": sum(a["held"] for a in await ask(pipes, "idle")),
        # The node's count: a client's close the node's socket dropped ends
        # there only at the idle timeout.
        "node_connections_before": before["connections"],
        "node_connections_after": stats["connections"],
        "udp_drops_node": udp_socket_drops({server.port}) - drops,
        "datagrams_shed": grown("udp_datagrams_shed"),
        "watch_s": args.churn_watch,
        "server_cores": round(cpu / args.churn_watch, 3),
        "worst_loop_stall_ms": stats.get("worst_loop_stall_ms"),
        "gc_full_collections": grown("gc_full_collections"),
        "gc_worst_full_pause_ms": stats.get("gc_worst_full_pause_ms"),
        "gc_reclaims": grown("gc_reclaims"),
        "gc_worst_reclaim_ms": stats.get("gc_worst_reclaim_ms"),  # since the start
        "gc_released_connections": grown("gc_released_connections"),
        "gc_stuck_connections": grown("gc_stuck_connections"),
        "server_rss_kib_before": rss_before,
        "server_rss_kib_after": server.rss_kib(),
        **chat,
    }


def share(text: str) -> float:
    """A share of the users, above 0 and at most 1 (``--churn``)."""
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: not a share above 0 and at most 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2, help="generator processes")
    parser.add_argument("--sockets", type=int, default=4, help="per process")
    parser.add_argument("--ramp", type=float, default=200.0, help="new per second")
    parser.add_argument(
        "--in-flight", type=int, default=32, help="logins under way per process"
    )
    parser.add_argument(
        "--generator-nice",
        type=int,
        default=10,
        help="the generators' niceness: they stand in for other machines, so "
        "the node gets the CPU first (0: as the node)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="log users whose connection ended in again at the next ramp, as "
        "the client core reconnects (off: an ended connection stays ended)",
    )
    parser.add_argument("--steps", type=int, default=4, help="measuring points")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle")
    parser.add_argument(
        "--server-idle-timeout",
        type=float,
        default=60.0,
        help="the node's --idle-timeout: the clients' keepalives go at a third of it",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="added to the node's command line (e.g. "
        "--server-arg=--max-unvalidated-handshakes=0: every login through a Retry)",
    )
    parser.add_argument("--chat-rate", type=float, default=100.0, help="messages/s")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of chat")
    parser.add_argument("--timeout", type=float, default=60.0, help="ramp seconds")
    parser.add_argument(
        "--stall",
        type=float,
        default=0.0,
        help="after the last step, stop the node this many seconds (SIGSTOP) "
        "and watch it come back",
    )
    parser.add_argument(
        "--recover", type=float, default=60.0, help="seconds to watch after --stall"
    )
    parser.add_argument(
        "--churn",
        type=share,
        default=None,
        help="after the last step (and --stall), this share of the users log "
        "off at once; the node is watched for --churn-watch seconds",
    )
    parser.add_argument(
        "--churn-watch", type=float, default=20.0, help="seconds to watch after --churn"
    )
    parser.add_argument("--rooms", type=int, default=0, help="meetings of 4")
    parser.add_argument("--fps", type=float, default=30.0, help="video datagrams/s")
    parser.add_argument("--plot", type=Path, default=None, help="PNG to write")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another checkout to compare"
    )
    args = parser.parse_args()
    if args.plot is not None and not can_plot():
        args.plot = None  # said now, not after a run of half an hour
    print(json.dumps(asyncio.run(run_all(args)), indent=1))


if __name__ == "__main__":
    main()
