"""Load generator: many logged-in QUIC connections over a few UDP sockets.

Each socket carries many client connections (aioquic's sans-I/O
``QuicConnection``), told apart by the destination connection id of every
datagram that comes back (the ids each connection issues are tracked from its
``ConnectionIdIssued`` events). The users and their session tokens are written
straight into the server's database before it starts, so logging in is a token
resume (no Argon2 per user); users 2k and 2k+1 are friends.

Connections open at a limited rate (``--ramp`` per second), resume, sync their
chat and then stay idle with a PING every 1.5 s, while ``--chat-rate`` messages
per second go from random users to their friends. Reports connections held,
the server's memory per connection, chat latency percentiles and errors.
Prints one JSON object.

    python bench/load.py --connections 2000 --sockets 4 --ramp 200 --chat-rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import socket
import ssl
import tempfile
import time
from pathlib import Path

from _common import Child, percentile, start_child  # noqa: I001
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from codec import ALPN, FrameDecoder, decode_server_message, encode_message
from codec.messages import (
    ChatMessage,
    Error,
    LoggedIn,
    Resume,
    SendMessage,
    SyncDone,
    SyncMessages,
)

KEEPALIVE = 1.5
"""Seconds between a connection's PINGs (as the client core sends them)."""


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


# -- many connections over one socket ----------------------------------------------


class Mux(asyncio.DatagramProtocol):
    """One UDP socket and the client connections it carries."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.by_cid: dict[bytes, Client] = {}
        self.cid_length = 8

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data:
            return
        if data[0] & 0x80:  # long header: the id's length is written out
            length = data[5]
            cid = data[6 : 6 + length]
        else:
            cid = data[1 : 1 + self.cid_length]
        client = self.by_cid.get(cid)
        if client is not None:
            client.receive(data, addr)


class Client:
    """One user's connection: resume, sync, then idle (and chat when asked)."""

    def __init__(self, mux: Mux, index: int, token: bytes, stats: Stats) -> None:
        self.mux = mux
        self.index = index
        self.token = token
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        configuration = QuicConfiguration(
            is_client=True,
            alpn_protocols=[ALPN],
            verify_mode=ssl.CERT_NONE,
            server_name="localhost",
            idle_timeout=5.0,
            max_datagram_frame_size=65536,
        )
        self.quic = QuicConnection(configuration=configuration)
        mux.cid_length = configuration.connection_id_length
        mux.by_cid[self.quic.host_cid] = self
        self.decoder = FrameDecoder()
        self.timer: asyncio.TimerHandle | None = None
        self.rid = 0
        self.ready = False
        self.closed = False

    @property
    def pending(self) -> bool:
        """Started and neither logged in nor closed yet."""
        return not self.ready and not self.closed

    def start(self) -> None:
        self.quic.connect(self.mux.server, now=self.loop.time())
        self.flush()

    def request(self, message: object) -> None:
        self.quic.send_stream_data(0, encode_message(message))  # type: ignore[arg-type]
        self.flush()

    def next_rid(self) -> int:
        self.rid += 1
        return self.rid

    def ping(self) -> None:
        if not self.closed:
            self.quic.send_ping(0)
            self.flush()

    def receive(self, data: bytes, addr: tuple[str, int]) -> None:
        self.quic.receive_datagram(data, addr, now=self.loop.time())
        self.process()

    def on_timer(self) -> None:
        self.timer = None
        self.quic.handle_timer(now=self.loop.time())
        self.process()

    def process(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted):
                self.request(Resume(rid=self.next_rid(), token=self.token))
            elif isinstance(event, events.StreamDataReceived):
                for frame in self.decoder.feed(event.data):
                    self.on_message(decode_server_message(frame))  # type: ignore[arg-type]
            elif isinstance(event, events.ConnectionIdIssued):
                self.mux.by_cid[event.connection_id] = self
            elif isinstance(event, events.ConnectionIdRetired):
                self.mux.by_cid.pop(event.connection_id, None)
            elif isinstance(event, events.ConnectionTerminated):
                if not self.closed:
                    self.closed = True
                    self.stats.errors.append(f"closed: {event.reason_phrase}")
        self.flush()

    def on_message(self, message: object) -> None:
        if isinstance(message, LoggedIn):
            self.request(SyncMessages(rid=self.next_rid(), seen={}))
        elif isinstance(message, SyncDone):
            self.ready = True
            self.stats.logged_in += 1
        elif isinstance(message, ChatMessage):
            sent_at = float(message.text.split(" ", 1)[0])
            self.stats.latencies.append(time.perf_counter() - sent_at)
        elif isinstance(message, Error):
            self.stats.errors.append(f"{message.code}: {message.message}")

    def flush(self) -> None:
        transport = self.mux.transport
        assert transport is not None
        for data, addr in self.quic.datagrams_to_send(now=self.loop.time()):
            transport.sendto(data, addr)
        when = self.quic.get_timer()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if when is not None:
            self.timer = self.loop.call_at(when, self.on_timer)


class Stats:
    def __init__(self) -> None:
        self.logged_in = 0
        self.errors: list[str] = []
        self.latencies: list[float] = []


# -- the run -------------------------------------------------------------------------


async def keepalive(clients: list[Client]) -> None:
    """PING every connection every :data:`KEEPALIVE` s, spread over the period."""
    while True:
        start = time.monotonic()
        for n, client in enumerate(clients):
            client.ping()
            if n % 200 == 199:
                await asyncio.sleep(0)
        await asyncio.sleep(max(0.05, KEEPALIVE - (time.monotonic() - start)))


async def chat(clients: list[Client], rate: float, stop_at: float) -> int:
    """Send ``rate`` messages per second from random users to their friend."""
    sent = 0
    next_at = time.perf_counter()
    while next_at < stop_at:
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        sender = random.choice(clients)
        friend = sender.index ^ 1
        if sender.ready and friend < len(clients) and clients[friend].ready:
            sender.request(
                SendMessage(
                    rid=sender.next_rid(),
                    to=f"load{friend:06d}",
                    client_id=secrets.token_hex(8),
                    text=f"{time.perf_counter()!r} load",
                )
            )
            sent += 1
        next_at += 1.0 / rate
    return sent


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-load-"))
    tokens = await seed(workdir / "data", args.connections)
    server: Child = start_child(
        [
            "-m",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(workdir / "data"),
            "--cert",
            str(workdir / "cert.pem"),
            "--key",
            str(workdir / "key.pem"),
            "--log-level",
            "error",
            "--chat-rate",
            "1000000",
        ],
        workdir,
    )
    stats = Stats()
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(1.0)
        rss_idle = server.rss_kib()
        muxes = []
        for _ in range(args.sockets):
            _, mux = await loop.create_datagram_endpoint(
                lambda: Mux((server.host, server.port)),
                local_addr=("127.0.0.1", 0),
                family=socket.AF_INET,
            )
            muxes.append(mux)
        clients: list[Client] = []
        pinger = loop.create_task(keepalive(clients))
        ramp_start = time.perf_counter()
        for i, token in enumerate(tokens):
            # Ramp-limited: at most --ramp new connections a second, and no more
            # than --in-flight logins at once (the server's handshakes and
            # resumes are the slow part; beyond that they would only time out).
            while (
                sum(1 for c in clients[-args.in_flight * 4 :] if c.pending)
                >= args.in_flight
            ):
                await asyncio.sleep(0.005)
            client = Client(muxes[i % len(muxes)], i, token, stats)
            clients.append(client)
            client.start()
            await asyncio.sleep(1.0 / args.ramp)
        deadline = time.perf_counter() + 30
        while stats.logged_in < len(clients) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        ramp_s = time.perf_counter() - ramp_start
        await asyncio.sleep(args.settle)
        rss_loaded = server.rss_kib()
        chat_sent = await chat(
            clients, args.chat_rate, time.perf_counter() + args.duration
        )
        await asyncio.sleep(1.0)
        held = sum(1 for c in clients if c.ready and not c.closed)
        pinger.cancel()
        for client in clients:
            client.quic.close()
            client.flush()
        await asyncio.sleep(0.2)
    finally:
        server.stop()
    per_connection = (rss_loaded - rss_idle) / max(1, stats.logged_in)
    return {
        "connections": args.connections,
        "sockets": args.sockets,
        "in_flight": args.in_flight,
        "logged_in": stats.logged_in,
        "held_at_end": held,
        "ramp_s": round(ramp_s, 1),
        "server_rss_idle_kib": rss_idle,
        "server_rss_loaded_kib": rss_loaded,
        "server_kib_per_connection": round(per_connection, 1),
        "chat": {
            "offered_per_s": args.chat_rate,
            "sent": chat_sent,
            "received": len(stats.latencies),
            "p50_ms": round(percentile(stats.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(stats.latencies, 99) * 1000, 2),
        },
        "errors": len(stats.errors),
        "first_errors": stats.errors[:5],
        "goals": {
            "connections": 100_000,
            "kib_per_connection_max": 30,
            "met": held >= 100_000 and per_connection < 30,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--sockets", type=int, default=4)
    parser.add_argument("--ramp", type=float, default=200.0, help="new per second")
    parser.add_argument(
        "--in-flight", type=int, default=32, help="logins under way at most"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle")
    parser.add_argument("--chat-rate", type=float, default=100.0, help="messages/s")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of chat")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=1))


if __name__ == "__main__":
    main()
