"""Chat throughput and delivery latency over real QUIC, durable (acknowledged only
after commit).

Throughput: N sender/recipient pairs; each sender keeps a window of messages in
flight (pipelined SendMessage); recipients acknowledge cumulatively every 50 ms.
Counts messages delivered to recipients per second. Latency: at a fixed
offered load spread over the pairs, the time from send to arrival at the
recipient, and to the sender's acknowledgement. Prints one JSON object.

Figures that hold across machines come with it: the same senders, window,
rate and client code against a bare aioquic request/response server
(``_bare_rr.py``: framing and msgpack, nothing else) in the same run, with
the quicmeet throughput as a ratio of that baseline and the bare server's
reply latency at the same fixed rate; the server's CPU time per delivered
message; per phase, how busy each side was, how long each side's loop thread
waited for a CPU (time the machine took), the server's worst loop stall (and
its own part, less the loop thread's wait for a CPU) and this load
generator's loop lag; and a verdict on what limits the latency
(server, load generator, or machine), with the figure behind it.

    python bench/chat.py --pairs 20 --duration 10 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from _common import (  # noqa: I001
    LoopLag,
    Phase,
    freeze_heap,
    percentile,
    process_cpu_seconds,
    server_stats,
    start_child,
    start_quicmeet_server,
)

from client import Session
from client.transport import open_connection
from codec.messages import (
    AckMessages,
    ChatMessage,
    MessageAccepted,
    Ok,
    Reply,
    RequestFriend,
    RespondFriend,
    SendMessage,
    SyncDone,
    SyncMessages,
)
from udpio.short_acks import ShortAcks

PASSWORD = "benchmark password"


class Recipient:
    """Counts arrivals and acknowledges them cumulatively, as a client does."""

    def __init__(self, session: Session, peer: str) -> None:
        self.session = session
        self.peer = peer
        self.received = 0
        self.newest = 0
        self.acked = 0
        self.latencies: list[float] = []
        self.send_to_commit: list[float] = []
        """Seconds from the send to the message's ``sent_ms`` (the server's
        clock, taken in the commit's transaction; the same machine's clock)."""
        self.commit_to_arrival: list[float] = []
        """Seconds from ``sent_ms`` to the arrival here."""
        session.add_event_hook(self._on_event)
        self._acker = asyncio.get_running_loop().create_task(self._ack_loop())

    def _on_event(self, event: object) -> None:
        if isinstance(event, ChatMessage):
            self.received += 1
            self.newest = max(self.newest, event.seq)
            sent_at = float(event.text.split(" ", 1)[0])
            now = time.perf_counter()
            self.latencies.append(now - sent_at)
            committed = event.sent_ms / 1000 - (time.time() - now)  # perf_counter
            self.send_to_commit.append(committed - sent_at)
            self.commit_to_arrival.append(now - committed)

    async def _ack_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.newest > self.acked:
                up_to = self.newest
                await self.session.call(
                    AckMessages, Reply, peer=self.peer, up_to_seq=up_to
                )
                self.acked = up_to

    def stop(self) -> None:
        self._acker.cancel()


async def setup(address: str, pairs: int) -> list[tuple[Session, Session, str, str]]:
    out = []
    for i in range(pairs):
        a_name, b_name = f"snd{i:03d}", f"rcv{i:03d}"
        a = Session(address, reconnect=False)
        b = Session(address, reconnect=False)
        for session, name in ((a, a_name), (b, b_name)):
            await session.connect()
            await session.register(name, PASSWORD)
            await session.login(name, PASSWORD)
            await session.call(SyncMessages, SyncDone, seen={})
        await a.call(RequestFriend, Reply, username=b_name)
        await b.call(RespondFriend, Reply, username=a_name, accept=True)
        out.append((a, b, a_name, b_name))
    return out


async def send_window(session: Session, to: str, stop_at: float, window: int, tag: str):
    proto = await session.wait_ready(1)
    return await send_window_on(proto, to, stop_at, window, tag, MessageAccepted)


async def send_window_on(proto, to: str, stop_at: float, window: int, tag: str, expect):
    """Keep ``window`` SendMessage requests in flight on ``proto`` until
    ``stop_at``; every reply must be an ``expect``."""
    sent = 0
    in_flight: set[asyncio.Future] = set()
    while time.perf_counter() < stop_at:
        while len(in_flight) < window:
            sent += 1
            request = SendMessage(
                rid=proto.next_rid(),
                to=to,
                client_id=f"{tag}-{sent}",
                text=f"{time.perf_counter()!r} payload of a typical chat line",
            )
            in_flight.add(asyncio.ensure_future(proto.request(request)))
        done, in_flight = await asyncio.wait(
            in_flight, return_when=asyncio.FIRST_COMPLETED
        )
        for future in done:
            assert isinstance(future.result(), expect)
    await asyncio.gather(*in_flight)
    return sent


async def send_paced(
    session: Session,
    to: str,
    stop_at: float,
    rate: float,
    tag: str,
    replies: list[float] | None = None,
):
    proto = await session.wait_ready(1)
    return await send_paced_on(proto, to, stop_at, rate, tag, MessageAccepted, replies)


async def send_paced_on(
    proto,
    to: str,
    stop_at: float,
    rate: float,
    tag: str,
    expect,
    replies: list[float] | None = None,
):
    """Send ``rate`` SendMessage requests per second on ``proto`` until
    ``stop_at``; every reply must be an ``expect``; each reply's round trip
    (seconds) goes to ``replies``."""
    interval = 1.0 / rate
    next_at = time.perf_counter()
    sent = 0
    # Only the requests still in flight are kept: a phase's end then waits
    # for a few of them, not for a gather over every request of the phase,
    # whose thousands of callbacks would run in one turn of this loop while
    # the last messages arrive (a stall of 10-20 ms in their latency).
    pending: set[asyncio.Future[None]] = set()
    failed: list[BaseException] = []

    async def one(request: SendMessage) -> None:
        started = time.perf_counter()
        reply = await proto.request(request)
        assert isinstance(reply, expect)
        if replies is not None:
            replies.append(time.perf_counter() - started)

    def done(task: asyncio.Future[None]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failed.append(task.exception())  # type: ignore[arg-type]

    while next_at < stop_at:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent += 1
        request = SendMessage(
            rid=proto.next_rid(),
            to=to,
            client_id=f"{tag}-{sent}",
            text=f"{time.perf_counter()!r} payload of a typical chat line",
        )
        task = asyncio.ensure_future(one(request))
        pending.add(task)
        task.add_done_callback(done)
        next_at += interval
    await asyncio.gather(*pending)
    if failed:
        raise failed[0]
    return sent


GOAL_P99_MS = 50
GOAL_PER_S = 10_000
MACHINE_WAIT_SHARE = 0.1
"""A loop thread that waits for a CPU this share of the time (100 ms per
second) is held back by the machine, whatever its own code does."""


async def run(pairs: int, duration: float, rate: float, window: int) -> dict:
    server = start_quicmeet_server(
        ["--chat-rate", "1000000", "--request-rate", "1000000"]
    )
    try:
        sessions = await setup(server.address, pairs)
        recipients = [Recipient(b, a_name) for _, b, a_name, _ in sessions]

        # Throughput: as fast as the server commits and delivers.
        await server_stats(server)
        freeze_heap()
        phase = Phase(server.proc.pid)
        server_cpu = process_cpu_seconds(server.proc.pid)
        start = time.perf_counter()
        stop_at = start + duration
        sent = await asyncio.gather(
            *(
                send_window(a, b_name, stop_at, window, f"t{i}")
                for i, (a, _, _, b_name) in enumerate(sessions)
            )
        )
        total = sum(sent)
        deadline = time.perf_counter() + 30
        while (
            sum(r.received for r in recipients) < total
            and time.perf_counter() < deadline
        ):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        server_cpu = process_cpu_seconds(server.proc.pid) - server_cpu
        throughput_phase = phase.finish()
        throughput_stats = await server_stats(server)
        delivered = sum(r.received for r in recipients)
        throughput = delivered / elapsed

        # Latency at a fixed offered load.
        for r in recipients:
            r.latencies.clear()
            r.received = 0
        replies: list[float] = []
        lag = LoopLag()
        await server_stats(server)
        protos = [await s.wait_ready(5) for a, b, _, _ in sessions for s in (a, b)]
        udp_before = _datagrams(protos)
        short_acks_before = ShortAcks.sent
        freeze_heap()
        phase = Phase(server.proc.pid)
        lag.start()
        stop_at = time.perf_counter() + duration
        paced = await asyncio.gather(
            *(
                send_paced(a, b_name, stop_at, rate / pairs, f"p{i}", replies)
                for i, (a, _, _, b_name) in enumerate(sessions)
            )
        )
        deadline = time.perf_counter() + 10
        while (
            sum(r.received for r in recipients) < sum(paced)
            and time.perf_counter() < deadline
        ):
            await asyncio.sleep(0.01)
        lags = lag.stop()
        latency_phase = phase.finish()
        udp_datagrams = _datagrams(protos) - udp_before
        short_acks = ShortAcks.sent - short_acks_before
        latency_stats = await server_stats(server)
        latencies = [x for r in recipients for x in r.latencies]
        for r in recipients:
            r.stop()
        for a, b, _, _ in sessions:
            await a.close()
            await b.close()
    finally:
        server.stop()
    bare = await baseline(pairs, duration, window, rate)
    p99_ms = percentile(latencies, 99) * 1000
    return {
        "pairs": pairs,
        "window": window,
        "throughput": {
            "messages_sent": total,
            "messages_delivered": delivered,
            "seconds": round(elapsed, 2),
            "delivered_per_s": round(throughput, 1),
            "server_worst_loop_stall_ms": throughput_stats["worst_loop_stall_ms"],
            "server_worst_own_loop_stall_ms": throughput_stats.get(
                "worst_own_loop_stall_ms"
            ),
        },
        "latency_at_fixed_load": {
            "offered_per_s": rate,
            "messages": len(latencies),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(p99_ms, 2),
            "reply_p50_ms": _ms(replies, 50),
            "reply_p99_ms": _ms(replies, 99),
            "server_worst_loop_stall_ms": latency_stats["worst_loop_stall_ms"],
            "server_worst_own_loop_stall_ms": latency_stats.get(
                "worst_own_loop_stall_ms"
            ),
            "load_generator_loop_lag_p99_ms": _ms(lags, 99),
            # Every datagram the clients sent and received (the server's
            # are the same ones), per message delivered: ACKs included.
            "client_datagrams_per_message": (
                round(udp_datagrams / len(latencies), 2)
                if latencies and udp_datagrams >= 0
                else None
            ),
            # Of those, the clients' ACK-only packets built on the short
            # path (udpio.short_acks) instead of aioquic's builder.
            "client_short_acks_per_message": (
                round(short_acks / len(latencies), 2) if latencies else None
            ),
            "cpu": latency_phase,
        },
        "server": {
            "cpu_us_per_message": round(server_cpu / max(delivered, 1) * 1e6, 1),
        },
        "baseline": bare,
        "ratio_to_bare_aioquic": round(throughput / bare["replies_per_s"], 3),
        "saturation": throughput_phase,
        "latency_limit": latency_limit(
            p99_ms, _ms(lags, 99), latency_phase, bare["latency_at_fixed_load"]
        ),
        "goals": {
            "throughput_min_per_s": GOAL_PER_S,
            "p99_max_ms": GOAL_P99_MS,
            "met": throughput >= GOAL_PER_S and p99_ms < GOAL_P99_MS,
        },
    }


def _datagrams(protos: list) -> int:
    """UDP datagrams these connections sent and received so far; -1 when a
    connection does not count them (an older checkout)."""
    total = 0
    for proto in protos:
        stats = getattr(proto, "udp_stats", {})
        if "datagrams_sent" not in stats:
            return -1
        total += stats["datagrams_sent"] + stats.get("datagrams_received", 0)
    return total


def _ms(seconds: list[float], q: float) -> float:
    return round(percentile(seconds, q) * 1000, 2)


def latency_limit(p99_ms: float, lag_p99_ms: float, phase: dict, bare: dict) -> dict:
    """What held the fixed-rate p99 above the goal, and the figure that says so:
    the machine (a bare aioquic server at the same rate missed it too, or the
    server's loop waited for a CPU), this load generator (its own loop ran
    late, or it ran out of CPU), or else the server itself."""
    if p99_ms < GOAL_P99_MS:
        return {"side": "none", "why": f"p99 {p99_ms:.0f} ms meets the goal"}
    if bare["reply_p99_ms"] >= GOAL_P99_MS:
        return {
            "side": "machine",
            "why": f"bare aioquic at the same rate: reply p99 "
            f"{bare['reply_p99_ms']:.0f} ms",
        }
    if (
        lag_p99_ms >= GOAL_P99_MS / 2
        or phase["load_generator_cores_busy"] >= 0.9
        or phase["load_generator_loop_waited_for_cpu"] >= MACHINE_WAIT_SHARE
    ):
        return {
            "side": "load generator",
            "why": f"its loop lag p99 {lag_p99_ms:.0f} ms, "
            f"{phase['load_generator_cores_busy']} cores busy, its loop waited "
            f"for a CPU {phase['load_generator_loop_waited_for_cpu']:.0%}",
        }
    if phase["server_loop_waited_for_cpu"] >= MACHINE_WAIT_SHARE:
        return {
            "side": "machine",
            "why": f"the server's loop thread waited for a CPU "
            f"{phase['server_loop_waited_for_cpu']:.0%} of the phase",
        }
    return {
        "side": "server",
        "why": f"{phase['server_cores_busy']} cores busy, its loop waited for a "
        f"CPU {phase['server_loop_waited_for_cpu']:.0%}; bare aioquic reply p99 "
        f"{bare['reply_p99_ms']:.0f} ms",
    }


async def baseline(connections: int, duration: float, window: int, rate: float) -> dict:
    """The same senders, window and rate against the bare request/response
    server."""
    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-bare-"))
    bare = start_child(
        ["bench/_bare_rr.py", str(workdir / "cert.pem"), str(workdir / "key.pem")]
    )
    protos = []
    try:
        for _ in range(connections):
            protos.append(await open_connection(bare.host, bare.port))
        freeze_heap()
        phase = Phase(bare.proc.pid)
        server_cpu = process_cpu_seconds(bare.proc.pid)
        start = time.perf_counter()
        sent = await asyncio.gather(
            *(
                send_window_on(p, "bare", start + duration, window, f"b{i}", Ok)
                for i, p in enumerate(protos)
            )
        )
        elapsed = time.perf_counter() - start
        server_cpu = process_cpu_seconds(bare.proc.pid) - server_cpu
        saturation = phase.finish()

        replies: list[float] = []
        lag = LoopLag()
        freeze_heap()
        phase = Phase(bare.proc.pid)
        lag.start()
        stop_at = time.perf_counter() + duration
        await asyncio.gather(
            *(
                send_paced_on(
                    p, "bare", stop_at, rate / connections, f"q{i}", Ok, replies
                )
                for i, p in enumerate(protos)
            )
        )
        lags = lag.stop()
        latency_phase = phase.finish()
    finally:
        for proto in protos:
            proto.close_quietly()
        bare.stop()
    return {
        "connections": connections,
        "replies_per_s": round(sum(sent) / elapsed, 1),
        "server_cpu_us_per_reply": round(server_cpu / sum(sent) * 1e6, 1),
        "saturation": saturation,
        "latency_at_fixed_load": {
            "offered_per_s": rate,
            "reply_p50_ms": _ms(replies, 50),
            "reply_p99_ms": _ms(replies, 99),
            "load_generator_loop_lag_p99_ms": _ms(lags, 99),
            "cpu": latency_phase,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s")
    parser.add_argument("--window", type=int, default=64, help="in flight per sender")
    args = parser.parse_args()
    print(
        json.dumps(
            asyncio.run(run(args.pairs, args.duration, args.rate, args.window)),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
