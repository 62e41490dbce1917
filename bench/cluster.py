"""Two nodes on one PostgreSQL and one Redis: chat latency across nodes, and the
time from a node's death to its users being served again by the other.

Starts a private PostgreSQL and Redis (as the tests do) and two server nodes.
Latency: N pairs, each sender on node a and its recipient on node b, at a fixed
offered load spread over the pairs; the time from send to arrival (the message
is committed to PostgreSQL, then routed through Redis to node b). Failover: M
clients on node a that know both nodes (``a,b``); node a is killed (SIGKILL) and
the time until every one of them has resumed its session on node b is measured,
and, for a meeting of two of them on node a (one sends synthetic video), the
time until the other sees the video again through node b. Prints one JSON
object.

    python bench/cluster.py --pairs 20 --rate 1000 --duration 10 --failover 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time

from _common import (  # noqa: I001
    Child,
    LoopLag,
    freeze_heap,
    percentile,
    process_cpu_seconds,
    server_stats,
    start_quicmeet_server,
    thread_cpu_wait_seconds,
)
from chat import PASSWORD, Recipient, send_paced

from client import Session
from client.events import Reconnected
from client.media import Call, SyntheticSource
from codec.messages import (
    FriendAccepted,
    Reply,
    RequestFriend,
    RespondFriend,
    SyncDone,
    SyncMessages,
)
from server.monitor import CollectorWatch
from tests.stores import PostgresServer, RedisServer

IDLE_TIMEOUT = 2.0
"""Seconds of silence after which the failover clients give their node up."""


def start_node(name: str, db_url: str, redis_url: str, blob_dir: str) -> Child:
    return start_quicmeet_server(
        [
            "--db",
            db_url,
            "--redis",
            redis_url,
            "--node-id",
            name,
            "--blob-dir",
            blob_dir,
            "--chat-rate",
            "1000000",
            "--request-rate",
            "1000000",
        ]
    )


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (PostgreSQL's backends)."""
    total = process_cpu_seconds(pid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                total += process_cpu_seconds(int(entry))
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    return total


def _cpu_seconds(name: str, pid: int) -> float:
    """CPU seconds of one process of the run: PostgreSQL with its backends;
    any other (this load generator above all, whose children are the nodes,
    PostgreSQL and Redis) on its own, so that no CPU is counted twice."""
    if name == "postgresql":
        return _tree_cpu_seconds(pid)
    return process_cpu_seconds(pid)


class CpuShares:
    """Cores each process of the cluster kept busy during one phase, to tell
    where the time of a chat message goes (nodes, PostgreSQL, Redis, or this
    load generator) and whether the machine was saturated; and the share of
    the phase the event loops of both nodes and of this generator spent
    runnable but waiting for a CPU (the machine's part of the latency)."""

    LOOPS = ("node_a", "node_b", "load_generator")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = time.perf_counter()
        self.before = {name: _cpu_seconds(name, pid) for name, pid in pids.items()}
        self.waits = {name: thread_cpu_wait_seconds(pids[name]) for name in self.LOOPS}

    def finish(self) -> tuple[dict, dict]:
        """Cores busy by process (and in all), and each loop's wait share."""
        elapsed = time.perf_counter() - self.start
        busy = {
            name: round((_cpu_seconds(name, pid) - self.before[name]) / elapsed, 2)
            for name, pid in self.pids.items()
        }
        waited = {
            name: round(
                (thread_cpu_wait_seconds(self.pids[name]) - before) / elapsed, 3
            )
            for name, before in self.waits.items()
        }
        return {**busy, "total": round(sum(busy.values()), 2)}, waited


async def login(address: str, name: str, **kwargs: object) -> Session:
    session = Session(address, **kwargs)  # type: ignore[arg-type]
    await session.connect()
    await session.register(name, PASSWORD)
    await session.login(name, PASSWORD)
    await session.call(SyncMessages, SyncDone, seen={})
    return session


async def befriend(a: Session, a_name: str, b: Session, b_name: str) -> None:
    """Friends across nodes; returns once ``a``'s node has heard of it."""
    accepted = asyncio.Event()
    a.add_event_hook(
        lambda event: accepted.set() if isinstance(event, FriendAccepted) else None
    )
    await a.call(RequestFriend, Reply, username=b_name)
    await b.call(RespondFriend, Reply, username=a_name, accept=True)
    await asyncio.wait_for(accepted.wait(), 10)


async def latency(
    a: str,
    b: str,
    pairs: int,
    rate: float,
    duration: float,
    tag: str,
    pids: dict[str, int],
    nodes: list[Child],
) -> dict:
    """Chat latency from senders on ``a`` to their recipients on ``b``."""
    sessions = []
    for i in range(pairs):
        s_name, r_name = f"{tag}s{i:03d}", f"{tag}r{i:03d}"
        sender = await login(a, s_name, reconnect=False)
        recipient = await login(b, r_name, reconnect=False)
        await befriend(sender, s_name, recipient, r_name)
        sessions.append((sender, recipient, s_name, r_name))
    recipients = [Recipient(r, s_name) for _, r, s_name, _ in sessions]
    commits = await _commits(nodes)
    freeze_heap()
    collector, lag = CollectorWatch(), LoopLag()
    collector.start()
    lag.start()
    cpu = CpuShares(pids)
    load_before = os.getloadavg()[0]
    stop_at = time.perf_counter() + duration
    sent = await asyncio.gather(
        *(
            send_paced(s, r_name, stop_at, rate / pairs, f"p{i}")
            for i, (s, _, _, r_name) in enumerate(sessions)
        )
    )
    deadline = time.perf_counter() + 10
    while (
        sum(r.received for r in recipients) < sum(sent)
        and time.perf_counter() < deadline
    ):
        await asyncio.sleep(0.01)
    cores_busy, loops_waited = cpu.finish()
    lags = lag.stop()
    collector.stop()
    after = await _commits(nodes)
    batches, ops = after[0] - commits[0], after[1] - commits[1]
    latencies = [x for r in recipients for x in r.latencies]
    to_commit = [x for r in recipients for x in r.send_to_commit]
    after_commit = [x for r in recipients for x in r.commit_to_arrival]
    for r in recipients:
        r.stop()
    for s, r, _, _ in sessions:
        await s.close()
        await r.close()
    return {
        "offered_per_s": rate,
        "sent": sum(sent),
        "delivered": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        # The two halves, split at node a's commit (its sent_ms, wall clock
        # in milliseconds): the queue for and start of the commit, then the
        # rest of it, the hop and the delivery.
        "send_to_commit_p50_p99_ms": [
            round(percentile(to_commit, q) * 1000, 1) for q in (50, 99)
        ],
        "commit_to_arrival_p50_p99_ms": [
            round(percentile(after_commit, q) * 1000, 1) for q in (50, 99)
        ],
        "cores_busy": cores_busy,
        # Each event loop's time runnable but without a CPU, as a share of
        # the phase: what the machine added to every message passing there.
        "loop_waited_for_cpu": loops_waited,
        # This generator's own stalls, which every message in flight carries:
        # its worst garbage collection and its loop's worst late wakeup.
        "load_generator_worst_gc_ms": round(
            max(collector.worst_full_ms, collector.worst_young_ms), 1
        ),
        "load_generator_worst_loop_lag_ms": round(max(lags, default=0.0) * 1000, 1),
        # Both nodes' chat commits (messages on the senders' node, receipts
        # on the recipients'): each batch is two round trips to PostgreSQL.
        "chat_batches": batches,
        "chat_ops_per_batch": round(ops / batches, 2) if batches else None,
        "load_average_before": round(load_before, 2),
    }


async def _commits(nodes: list[Child]) -> tuple[int, int]:
    """The chat batches and the messages and receipts in them that ``nodes``
    committed so far."""
    stats = [await server_stats(node) for node in nodes]
    return (
        sum(s["chat_batches"] for s in stats),
        sum(s["chat_ops_committed"] for s in stats),
    )


async def failover(node_a: Child, b: str, clients: int) -> dict:
    both = f"{node_a.address},{b}"
    sessions = [
        await login(both, f"fo{i:04d}", idle_timeout=IDLE_TIMEOUT)
        for i in range(clients)
    ]
    loop = asyncio.get_running_loop()
    # A meeting among them: the first sends video, the second watches it.
    shown: list[float] = []
    room = await sessions[0].rooms.create()
    await sessions[1].rooms.join(room.room_id)
    calls = [
        Call(sessions[0]),
        Call(sessions[1], [lambda track, frame: shown.append(loop.time())]),
    ]
    for call in calls:
        call.start()
    await calls[0].publish_video(SyntheticSource(160, 120, 15.0))
    while not shown:
        await asyncio.sleep(0.1)
    back: list[float] = []
    viewer_back: list[float] = []
    done = asyncio.Event()
    watchers = [
        loop.create_task(
            _watch_reconnect(
                session, back, clients, done, viewer_back if i == 1 else None
            )
        )
        for i, session in enumerate(sessions)
    ]
    killed_at = loop.time()
    node_a.proc.send_signal(signal.SIGKILL)
    node_a.proc.wait(5)
    try:
        await asyncio.wait_for(done.wait(), 60)
        # The viewer is back in the meeting (it rejoins before it says it
        # reconnected): the first picture after that came through node b.
        deadline = loop.time() + 30
        while loop.time() < deadline and not any(t > viewer_back[0] for t in shown):
            await asyncio.sleep(0.05)
    except TimeoutError:
        pass
    for task in watchers:
        task.cancel()
    times = sorted(t - killed_at for t in back)
    video = [t - killed_at for t in shown if viewer_back and t > viewer_back[0]]
    for call in calls:
        await call.close()
    for session in sessions:
        await session.close()
    return {
        "clients": clients,
        "resumed": len(times),
        "client_idle_timeout_s": IDLE_TIMEOUT,
        "median_s": round(percentile(times, 50), 2),
        "all_back_s": round(times[-1], 2) if len(times) == clients else None,
        "meeting_video_back_s": round(video[0], 2) if video else None,
    }


async def _watch_reconnect(
    session: Session,
    back: list[float],
    clients: int,
    done: asyncio.Event,
    mine: list[float] | None = None,
) -> None:
    """Note when ``session`` has resumed on another node (also in ``mine``)."""
    while True:
        event = await session.next_event()
        if isinstance(event, Reconnected):
            now = asyncio.get_running_loop().time()
            back.append(now)
            if mine is not None:
                mine.append(now)
            if len(back) == clients:
                done.set()
            return


async def run(pairs: int, rate: float, duration: float, clients: int) -> dict:
    pg, redis = PostgresServer(), RedisServer()
    pg.start()
    redis.start()
    nodes = []
    blobs = ""
    try:
        url = pg.create_database()
        blobs = tempfile.mkdtemp(prefix="quicmeet-bench-blobs-")
        nodes = [start_node(name, url, redis.url, blobs) for name in "ab"]
        a, b = nodes
        pids = {
            "node_a": a.proc.pid,
            "node_b": b.proc.pid,
            "postgresql": pg.pid,
            "redis": redis.pid,
            "load_generator": os.getpid(),
        }
        result = {
            # The same load with both ends on node a first: what the nodes,
            # PostgreSQL and this machine cost without the hop through Redis.
            "latency_same_node": await latency(
                a.address, a.address, pairs, rate, duration, "same", pids, nodes
            ),
            "latency_across_nodes": await latency(
                a.address, b.address, pairs, rate, duration, "cross", pids, nodes
            ),
            "failover": await failover(a, b.address, clients),
        }
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(blobs, ignore_errors=True)
    lat, fo = result["latency_across_nodes"], result["failover"]
    result["goals"] = {
        "p99_max_ms": 50,
        "failover_max_s": 5,
        "met": lat["p99_ms"] < 50
        and fo["all_back_s"] is not None
        and fo["all_back_s"] < 5
        and fo["meeting_video_back_s"] is not None
        and fo["meeting_video_back_s"] < 5,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--failover", type=int, default=50, help="clients on node a (at least 2)"
    )
    args = parser.parse_args()
    if args.failover < 2:
        parser.error("--failover needs at least 2 clients (two of them meet)")
    print(
        json.dumps(
            asyncio.run(run(args.pairs, args.rate, args.duration, args.failover)),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
