"""A node under a flood of new connections: are its own users still served?

Starts a node, logs in ``--pairs`` pairs of users (clients with the client
core's defaults: a 5 s idle timeout, and here no reconnection, so that a
connection the node starved is counted lost) that chat at ``--rate``
messages a second in all, and then, from a thread of its own, sends the
first flights of ``--flood`` new connections a second for ``--seconds``:
real QUIC Initial packets (a ClientHello each, built beforehand with
aioquic's client, each to a connection id of its own) that are never
answered after. Each costs a node a handshake's first flight (its keys,
its certificate and signature, four datagrams out), so a flood larger than
the node's core keeps its socket's queue standing: a login storm (another
node's users failing over to this one) or an attack looks the same to it.
Once as many handshakes as its ``--max-unvalidated-handshakes`` are
unfinished, a node answers the rest with a QUIC Retry instead, which
costs it a token; the flood never answers one.

Reports, for the messages sent before, during and after the flood: how
many were sent, delivered (by 10 s after the last was sent) and failed,
their latency percentiles, and the node's cores in that phase; then the
users' connections lost, what the node shed (all datagrams, and those
of new connections), and the Retries it sent (a flight it neither shed nor
answered with a Retry began a handshake). ``--baseline CHECKOUT`` runs the
same against another checkout's node after this one's, with
``--baseline-arg`` added to its command line. Prints one JSON object.

    python bench/handshake_flood.py --pairs 10 --rate 100 --flood 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from _common import (  # noqa: I001
    Child,
    percentile,
    process_cpu_seconds,
    server_stats,
    start_quicmeet_server,
    stat_grew,
)
from chat import Recipient, setup

from client import ServerError
from client.events import Disconnected
from codec import ALPN
from codec.messages import ChatMessage, MessageAccepted, SendMessage

ROOT = Path(__file__).resolve().parent.parent
PHASE_S = 3.0
"""Seconds of chat before the flood and after it."""


def first_flights(host: str, port: int, count: int) -> list[bytes]:
    """``count`` first datagrams of new QUIC connections to ``host:port``
    (each a padded Initial packet with a ClientHello, to a connection id of
    its own), as aioquic's client builds them."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=[ALPN], verify_mode=ssl.CERT_NONE
    )
    flights = []
    for _ in range(count):
        quic = QuicConnection(configuration=configuration)
        now = time.monotonic()
        quic.connect((host, port), now=now)
        flights.append(quic.datagrams_to_send(now)[0][0])
    return flights


def flood(
    host: str, port: int, flights: list[bytes], rate: float, start_at: float
) -> None:
    """Send ``flights`` to ``host:port`` at ``rate`` a second from
    ``start_at`` (a ``time.time()``), never reading what comes back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    time.sleep(max(0.0, start_at - time.time()))
    began = time.monotonic()
    for n, flight in enumerate(flights):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(flight, (host, port))
        except OSError:
            pass  # a full send buffer: the flight is lost, as on a network
    sock.close()


class TimedRecipient(Recipient):
    """A recipient that also keeps each message's send time, by arrival."""

    def __init__(self, session, peer: str) -> None:
        self.sent_at: list[float] = []
        super().__init__(session, peer)

    def _on_event(self, event: object) -> None:
        super()._on_event(event)
        if isinstance(event, ChatMessage):
            self.sent_at.append(float(event.text.split(" ", 1)[0]))


def phase_of(sent_at: float, flood_at: float, flood_end: float) -> str:
    if sent_at < flood_at:
        return "before"
    return "during" if sent_at < flood_end else "after"


async def chat(
    pairs: list, rate: float, stop_at: float, sent: dict[str, float], failed: list[str]
) -> None:
    """Each pair's sender sends its share of ``rate`` until ``stop_at``; each
    message's send time goes to ``sent`` by its text's tag, each failure to
    ``failed``."""

    async def one(session, to: str, tag: str, interval: float) -> None:
        proto = await session.wait_ready(5)
        n = 0
        next_at = time.perf_counter()
        pending: set[asyncio.Task] = set()

        async def send(text: str) -> None:
            try:
                reply = await asyncio.wait_for(
                    proto.request(
                        SendMessage(
                            rid=proto.next_rid(), to=to, client_id=text, text=text
                        )
                    ),
                    30,
                )
                if not isinstance(reply, MessageAccepted):
                    failed.append(text)
            except (ServerError, ConnectionError, TimeoutError, OSError):
                failed.append(text)

        while next_at < stop_at:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            n += 1
            at = time.perf_counter()
            text = f"{at!r} {tag}-{n}"
            sent[text] = at
            task = asyncio.ensure_future(send(text))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
        if pending:
            await asyncio.wait(pending)

    interval = len(pairs) / rate
    await asyncio.gather(
        *(one(a, b_name, a_name, interval) for a, _, a_name, b_name in pairs)
    )


async def run_one(
    root: Path, args: argparse.Namespace, label: str, extra: list[str] | None = None
) -> dict:
    server = start_quicmeet_server(extra, root=root)
    try:
        return await _measure(server, args, label)
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


async def _measure(server: Child, args: argparse.Namespace, label: str) -> dict:
    count = int(args.flood * args.seconds)
    flights = await asyncio.to_thread(first_flights, server.host, server.port, count)
    pairs = await setup(server.address, args.pairs)
    recipients = [TimedRecipient(b, a_name) for _, b, a_name, _ in pairs]
    lost: set[str] = set()
    for a, b, a_name, b_name in pairs:
        for session, name in ((a, a_name), (b, b_name)):
            session.add_event_hook(
                lambda event, name=name: (
                    lost.add(name) if isinstance(event, Disconnected) else None
                )
            )
    start = time.perf_counter()
    flood_at = start + PHASE_S
    flood_end = flood_at + args.seconds
    stop_at = flood_end + PHASE_S
    # A thread: it sleeps between sends and holds the GIL only for a send.
    flooder = threading.Thread(
        target=flood,
        args=(
            server.host,
            server.port,
            flights,
            args.flood,
            time.time() + (flood_at - time.perf_counter()),
        ),
    )
    flooder.start()
    before = await server_stats(server)
    cpu = {"start": process_cpu_seconds(server.proc.pid)}
    sent: dict[str, float] = {}
    failed: list[str] = []
    chatting = asyncio.ensure_future(chat(pairs, args.rate, stop_at, sent, failed))
    for name, at in (("flood", flood_at), ("flood_end", flood_end)):
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        cpu[name] = process_cpu_seconds(server.proc.pid)
    await chatting
    cpu["end"] = process_cpu_seconds(server.proc.pid)
    deadline = time.perf_counter() + 10
    delivered = sum(r.received for r in recipients)
    while delivered < len(sent) - len(failed) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        delivered = sum(r.received for r in recipients)
    await asyncio.to_thread(flooder.join, 30)
    after = await server_stats(server)

    # Latency by the phase its message was sent in.
    by_phase: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for r in recipients:
        r.stop()
        for sent_at, latency in zip(r.sent_at, r.latencies, strict=True):
            by_phase[phase_of(sent_at, flood_at, flood_end)].append(latency)
    failed_by_phase = Counter(phase_of(sent[t], flood_at, flood_end) for t in failed)
    sent_by_phase = Counter(phase_of(at, flood_at, flood_end) for at in sent.values())
    spans = {
        "before": (cpu["start"], cpu["flood"], PHASE_S),
        "during": (cpu["flood"], cpu["flood_end"], args.seconds),
        "after": (cpu["flood_end"], cpu["end"], PHASE_S),
    }
    phases = {}
    for phase, latencies in by_phase.items():
        first, last, seconds = spans[phase]
        phases[phase] = {
            "sent": sent_by_phase[phase],
            "delivered": len(latencies),
            "failed": failed_by_phase[phase],
            "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "node_cores": round((last - first) / seconds, 2),
        }
    for a, b, *_ in pairs:
        await a.close()
        await b.close()

    return {
        "node": label,
        "messages_sent": len(sent),
        "phases": phases,
        "users_lost": len(lost),
        "users": 2 * len(pairs),
        "flood_flights_sent": count,
        "node_datagrams_shed": stat_grew(after, before, "udp_datagrams_shed"),
        "node_new_connection_datagrams_shed": stat_grew(
            after, before, "udp_new_connection_datagrams_shed"
        ),
        "node_datagrams_received": stat_grew(after, before, "udp_datagrams_received"),
        "node_retries_sent": stat_grew(after, before, "quic_retries_sent"),
        "node_retry_tokens_refused": stat_grew(
            after, before, "quic_retry_tokens_refused"
        ),
    }


async def main_async(args: argparse.Namespace) -> dict:
    runs = [await run_one(ROOT, args, "this")]
    if args.baseline is not None:
        runs.append(
            await run_one(
                args.baseline.resolve(),
                args,
                " ".join([str(args.baseline), *args.baseline_arg]),
                args.baseline_arg,
            )
        )
    return {
        "pairs": args.pairs,
        "rate": args.rate,
        "flood_per_s": args.flood,
        "flood_seconds": args.seconds,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s")
    parser.add_argument("--flood", type=float, default=1000.0, help="new connections/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="of flood")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another checkout to compare"
    )
    parser.add_argument(
        "--baseline-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="added to the baseline node's command line (e.g. "
        "--baseline . --baseline-arg=--max-unvalidated-handshakes=-1)",
    )
    args = parser.parse_args()
    json.dump(asyncio.run(main_async(args)), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
