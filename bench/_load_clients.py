"""The load generator's clients: many QUIC connections over a few UDP sockets.

Each socket carries many client connections (aioquic's sans-I/O
``QuicConnection``), told apart by the destination connection id of every
datagram that comes back (the ids each connection issues are tracked from its
``ConnectionIdIssued`` events). A :class:`Generator` is one process's share of
the users; ``bench/load.py`` runs several in child processes and steers them
through a pipe (see :func:`serve`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import secrets
import ssl
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from _common import (  # noqa: I001
    busy_share,
    machine_cpu_ticks,
    percentile,
    process_cpu_seconds,
    rss_kib,
    udp_socket_drops,
)
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from client.quic_adapter import (
    limit_peer_connection_ids,
    peer_idle_timeout,
    set_idle_timer,
)
from client.transport import ANNOUNCED_IDLE_TIMEOUT, Keepalive, keepalive_plan
from codec import ALPN, FrameDecoder, decode_server_message, encode_message
from codec.media import VideoPacket, parse_packet
from codec.messages import (
    ChatMessage,
    CreateRoom,
    Error,
    JoinRoom,
    LoggedIn,
    PublishTrack,
    Resume,
    RoomJoined,
    SendMessage,
    SyncDone,
    SyncMessages,
    TrackPublished,
)
from codec.pmtu import is_padding
from server.heap import HeapFreezer
from server.monitor import CollectorWatch, LoopMonitor
from udpio.deadlines import Deadlines
from udpio.endpoint import UdpEndpoint, open_endpoint
from udpio.short_acks import install as short_ack_path
from udpio.short_acks import owe_keepalive_ack
from udpio.short_path import install as short_stream_path
from udpio.short_path import nothing_to_send, send_ping
from udpio.short_receive import install as short_receive_path

CLIENT_IDLE_TIMEOUT = 5.0
"""The client core's default trust in a silent server: with the server's
announced idle timeout it sets how often a connection PINGs
(``client.transport.keepalive_plan``, as the client core does)."""
ROOM_SIZE = 4
"""Members of each meeting of the meeting mix; the first publishes video."""
RAMP_CHECK_S = 1.0
"""How often the ramp looks at how its logins fare (:func:`next_rate`)."""
SLOW_HANDSHAKE_S = 0.25
"""A window whose handshakes took longer than this (p90) slows the ramp: on
loopback one takes a few milliseconds, unless a loop is behind."""
LATE_WAKEUP_S = 0.1
"""A ramp sleep that ended this late says this process's loop is behind."""
BUSY_CEILING = 0.85
"""A window in which the machine's CPU (all cores), or the node's own (one
thread: a core at most), was busier than this slows the ramp: the node and
its generators share the cores, and the signs above come only once one of
them is already behind (see :func:`next_rate`)."""
MAX_RECEIVE_DELAY_S = 0.25
"""What a datagram may have waited in a generator's socket before it is shed
unread (the node's default ``--max-receive-delay``). A generator stands in
for thousands of clients on other machines; behind (a collection, the CPU
the node took), it reads on the client core's I/O layer as the node does,
batched, and sheds as the node sheds: the connections it serves are answered
before they probe again, the others back off. Reading everything late
instead keeps every connection of both ends probing, and the generator then
stays behind for good (docs/performance.md, "A generator that falls
behind")."""


def next_rate(rate: float, most: float, congested: bool) -> float:
    """The ramp's new logins a second after a window: halved when it was
    congested (the machine's or the node's CPU nearly all busy, handshakes
    slow, a socket overflowing, this loop behind), else a tenth of ``most``
    more, up to ``most``. On a machine the node shares with its generators,
    a ramp that outruns the CPU makes the node's replies late, every
    connection's probe timers fire, and the retransmissions take what is
    left. Slow handshakes, drops and a late loop say that has begun, which
    was too late to save the node (docs/performance.md, "100,000 again");
    busy CPUs say it is about to."""
    if congested:
        return max(most / 64, rate / 2)
    return min(most, rate + most / 10)


def _cpu_seconds(pid: int | None) -> float:
    """``pid``'s CPU seconds; 0 for none, or for a process that ended."""
    if pid is None:
        return 0.0
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


class Mux(asyncio.DatagramProtocol):
    """One UDP socket and the client connections it carries."""

    def __init__(self, server: tuple[str, int], deadlines: Deadlines) -> None:
        self.server = server
        self.deadlines = deadlines
        """The timers of every client of the process (the node keeps its
        connections' the same way: ``udpio/deadlines.py``)."""
        self.transport: UdpEndpoint | None = None
        self.by_cid: dict[bytes, Client] = {}
        self.cid_length = 8

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, UdpEndpoint)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data:
            return
        if data[0] & 0x80:  # long header: the id's length is written out
            cid = data[6 : 6 + data[5]]
        else:
            cid = data[1 : 1 + self.cid_length]
        client = self.by_cid.get(cid)
        if client is not None:
            client.receive(data, addr)


class Stats:
    """What one generator process saw."""

    def __init__(self) -> None:
        self.logged_in = 0
        self.login_times: list[float] = []
        """Seconds from a connection's first packet to its sync being done."""
        self.handshake_times: list[float] = []
        """Seconds from a connection's first packet to its handshake's end."""
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.media_latencies: list[float] = []
        self.closed = 0
        """Connections that ended."""
        self.ended: deque[Client] = deque()
        """Clients whose connection ended unasked (an idle timeout, the node
        closing it); a ramp with ``reconnect`` logs them in again."""
        self.ended_keys: Counter[int] = Counter()
        """Of the connections that ended unasked, how many had each key
        (the first byte of the node's connection id, by which a node behind
        sheds whole connections: :mod:`udpio.queue_delay`)."""


class Client:
    """One user's connection: resume, sync, then idle (chat or meet when asked)."""

    def __init__(
        self, mux: Mux, index: int, token: bytes, stats: Stats, slot: int
    ) -> None:
        self.mux = mux
        self.index = index
        self.slot = slot
        """Its place in its generator's ``clients``."""
        self.token = token
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        configuration = QuicConfiguration(
            is_client=True,
            alpn_protocols=[ALPN],
            verify_mode=ssl.CERT_NONE,
            server_name="localhost",
            idle_timeout=ANNOUNCED_IDLE_TIMEOUT,
            max_datagram_frame_size=65536,
        )
        self.quic = QuicConnection(configuration=configuration)
        # As the client core: two connection ids from the node, not aioquic's
        # eight (the node keeps each one it issues for the connection's life).
        limit_peer_connection_ids(self.quic)
        mux.cid_length = configuration.connection_id_length
        mux.by_cid[self.quic.host_cid] = self
        self.cids = [self.quic.host_cid]
        """Every id the node may send to it (dropped from the socket's table
        when a new connection takes its place)."""
        self.decoder = FrameDecoder()
        self.keepalive = keepalive_plan(None, CLIENT_IDLE_TIMEOUT)
        """The client core's plan, once the handshake told the node's idle
        timeout."""
        self.deadline_seq = 0
        self.deadline_at: float | None = None
        self.rid = 0
        self.replies: dict[int, Callable[[Any], None]] = {}
        self.ready = False
        self.closed = False
        self.stopping = False
        self.started = 0.0

    @property
    def pending(self) -> bool:
        """Started and neither logged in nor closed yet."""
        return not self.ready and not self.closed

    @property
    def up(self) -> bool:
        """Logged in, and neither closed nor closing."""
        return self.ready and not (self.closed or self.stopping)

    def start(self) -> None:
        self.started = time.perf_counter()
        self.quic.connect(self.mux.server, now=self.loop.time())
        self.flush()

    def request(
        self,
        message_type: type,
        on_reply: Callable[[Any], None] | None = None,
        **fields: Any,
    ) -> None:
        self.rid += 1
        if on_reply is not None:
            self.replies[self.rid] = on_reply
        self.quic.send_stream_data(
            0, encode_message(message_type(rid=self.rid, **fields))
        )
        self.flush()

    def ping(self) -> None:
        if self.closed:
            return
        # Most of an idle connection's sending; aioquic's builder is the
        # fallback when anything else is due.
        sent = send_ping(self.quic, self.loop.time())
        if sent is None:
            self.quic.send_ping(0)
            self.flush()
        else:
            self._send(sent)

    def keepalive_ack(self) -> bool:
        """A keepalive the node does not answer: an ACK-only packet, as the
        client core sends between its PINGs for a node with a long idle
        timeout (``client.transport.keepalive_plan``). False, having PINGed
        instead, when there is nothing to acknowledge."""
        if self.closed:
            return False
        if owe_keepalive_ack(self.quic, self.loop.time()):
            self.flush()
            return True
        self.ping()
        return False

    def send_datagram(self, data: bytes) -> None:
        if not self.closed:
            self.quic.send_datagram_frame(data)
            self.flush()

    def receive(self, data: bytes, addr: tuple[str, int]) -> None:
        self.quic.receive_datagram(data, addr, now=self.loop.time())
        self.process()

    def on_deadline(self, when: float) -> None:
        self.quic.handle_timer(now=max(when, self.loop.time()))
        self.process()

    def process(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted):
                self.stats.handshake_times.append(time.perf_counter() - self.started)
                # The client core's receiving (its steady state's packets,
                # here the node's ACKs) and sending of stream and ACK-only
                # packets, on the short paths.
                short_receive_path(self.quic)
                short_stream_path(self.quic)
                short_ack_path(self.quic)
                # The client core's keepalive plan and idle timer.
                self.keepalive = keepalive_plan(
                    peer_idle_timeout(self.quic), CLIENT_IDLE_TIMEOUT
                )
                set_idle_timer(self.quic, self.keepalive.idle_timer)
                self.request(Resume, token=self.token)
            elif isinstance(event, events.StreamDataReceived):
                for frame in self.decoder.feed(event.data):
                    self.on_message(decode_server_message(frame))  # type: ignore[arg-type]
            elif isinstance(event, events.DatagramFrameReceived):
                if is_padding(event.data):
                    continue  # the server's path MTU probe
                sent_at = struct.unpack_from("!d", parse_packet(event.data).payload)[0]
                self.stats.media_latencies.append(time.perf_counter() - sent_at)
            elif isinstance(event, events.ConnectionIdIssued):
                self.mux.by_cid[event.connection_id] = self
                self.cids.append(event.connection_id)
            elif isinstance(event, events.ConnectionIdRetired):
                self.mux.by_cid.pop(event.connection_id, None)
            elif isinstance(event, events.ConnectionTerminated):
                if not self.closed:
                    self.stats.closed += 1
                    if not self.stopping:
                        self.stats.errors.append(f"closed: {event.reason_phrase}")
                        self.stats.ended.append(self)
                        peer_cid = self.quic._peer_cid.cid
                        if peer_cid:
                            self.stats.ended_keys[peer_cid[0]] += 1
                self.closed = True
        self.flush()

    def on_message(self, message: Any) -> None:
        on_reply = self.replies.pop(getattr(message, "rid", None) or 0, None)
        if isinstance(message, Error):
            self.stats.errors.append(f"{message.code}: {message.message}")
        elif on_reply is not None:
            on_reply(message)
        elif isinstance(message, LoggedIn):
            self.request(SyncMessages, seen={})
        elif isinstance(message, SyncDone):
            self.ready = True
            self.stats.logged_in += 1
            self.stats.login_times.append(time.perf_counter() - self.started)
        elif isinstance(message, ChatMessage):
            sent_at = float(message.text.split(" ", 1)[0])
            self.stats.latencies.append(time.perf_counter() - sent_at)

    def close(self) -> None:
        self.stopping = True
        self.quic.close()
        self.flush()

    def flush(self) -> None:
        now = self.loop.time()
        if nothing_to_send(self.quic, now):
            # Most calls: an ACK-only packet read, the answer to a PING.
            self.mux.deadlines.arm(self, self.quic.get_timer())
        else:
            self._send(self.quic.datagrams_to_send(now=now))

    def _send(self, datagrams: list[tuple[bytes, Any]]) -> None:
        """Send what the connection built, and arm its next deadline."""
        transport = self.mux.transport
        assert transport is not None
        for data, addr in datagrams:
            transport.sendto(data, addr)
        self.mux.deadlines.arm(self, self.quic.get_timer())


class Generator:
    """One process's users: ramp them up, keep them alive, offer traffic."""

    def __init__(
        self,
        server: tuple[str, int],
        users: list[tuple[int, bytes]],
        sockets: int,
        in_flight: int,
    ) -> None:
        self.server = server
        self.users = users
        self.sockets = sockets
        self.in_flight = in_flight
        self.stats = Stats()
        self.clients: list[Client] = []
        """Each user's connection, by its place in ``users`` (an ended one
        stays until the user logs in again)."""
        self.started: deque[Client] = deque(maxlen=in_flight * 4)
        """The newest connections started: how many logins are under way
        (logins finish roughly in order)."""
        self.reopened = 0
        """Connections of this ramp that replaced an ended one."""
        self.by_index: dict[int, Client] = {}
        self.muxes: list[Mux] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.pings = 0
        self.keepalive_acks = 0
        """ACK-only keepalives sent between the PINGs (``pings`` counts the
        PINGs)."""

    def kept(self) -> int:
        """Clients this process keeps, open or ended (an ended one stays in
        ``clients``, its objects as alive as a logged-in one's): the heap
        freezer's view of how much the heap grew."""
        return len(self.clients)

    def _sockets_count(self, name: str) -> int:
        """The sum of counter ``name`` over this process's sockets."""
        return sum(
            m.transport.stats[name] for m in self.muxes if m.transport is not None
        )

    def shed(self) -> int:
        """Datagrams this process's sockets shed unread while it was behind
        (:data:`MAX_RECEIVE_DELAY_S`)."""
        return self._sockets_count("datagrams_shed")

    def sent(self) -> int:
        """Datagrams this process's sockets sent: the PINGs, a probe that
        repeats one whose ACK came later than its probe timeout, the ACKs of
        what the node sent that asks for one (a path MTU confirmation a
        minute after a login)."""
        return self._sockets_count("datagrams_sent")

    def ports(self) -> list[int]:
        """The local UDP ports of this process's sockets."""
        return [
            m.transport.get_extra_info("sockname")[1]
            for m in self.muxes
            if m.transport is not None
        ]

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        for _ in range(self.sockets):
            _, mux = await open_endpoint(
                lambda: Mux(self.server, deadlines),
                ("127.0.0.1", 0),
                max_receive_delay=MAX_RECEIVE_DELAY_S,
            )
            assert isinstance(mux, Mux)
            self.muxes.append(mux)
        self.tasks.append(loop.create_task(self._keepalive()))

    async def ramp(
        self,
        count: int,
        rate: float,
        timeout: float,
        reconnect: bool = False,
        node_pid: int | None = None,
    ) -> dict[str, Any]:
        """Open connections until ``count`` of this process's users are up, at
        most ``rate`` new ones a second (less while logins are congested:
        :func:`next_rate`; ``node_pid``, the node's process when it runs on
        this machine, counts its CPU) and ``in_flight`` logins at once; give
        up after ``timeout`` seconds (``pending`` then says how many hang).
        With ``reconnect``, users whose connection ended log in again after
        the new ones."""
        start = time.perf_counter()
        deadline = start + timeout
        current, cuts, busy_cuts, opened = rate, 0, 0, 0
        window_at = start
        handshakes_seen = len(self.stats.handshake_times)
        drops = udp_socket_drops(set(self.ports()))
        ticks = machine_cpu_ticks()
        node_cpu = _cpu_seconds(node_pid)
        late = False
        self.reopened = 0
        target = min(count, len(self.users))
        while len(self.clients) < target or (reconnect and self.stats.ended):
            if time.perf_counter() > deadline:
                return self._ramped(start, opened, cuts, busy_cuts)
            while sum(1 for c in self.started if c.pending) >= self.in_flight:
                if time.perf_counter() > deadline:
                    return self._ramped(start, opened, cuts, busy_cuts)
                await asyncio.sleep(0.005)
            if len(self.clients) < target:
                slot = len(self.clients)
                self.clients.append(self._client(slot))
            else:
                # A user whose connection ended logs in again, as the client
                # core reconnects: what the run measures is what the node
                # holds, not what a moment of overload once cost it.
                slot = self.stats.ended.popleft().slot
                self._forget(self.clients[slot])
                self.clients[slot] = self._client(slot)
                self.reopened += 1
            opened += 1
            asked = time.perf_counter()
            await asyncio.sleep(1.0 / current)
            now = time.perf_counter()
            late = late or now - asked > 1.0 / current + LATE_WAKEUP_S
            if now - window_at >= RAMP_CHECK_S:
                recent_handshakes = self.stats.handshake_times[handshakes_seen:]
                handshakes_seen = len(self.stats.handshake_times)
                dropped = udp_socket_drops(set(self.ports()))
                ticks_now = machine_cpu_ticks()
                node_cpu_now = _cpu_seconds(node_pid)
                machine_busy = busy_share(ticks, ticks_now) > BUSY_CEILING
                node_busy = node_cpu_now - node_cpu > BUSY_CEILING * (now - window_at)
                busy = machine_busy or node_busy
                congested = (
                    late
                    or busy
                    or dropped > drops
                    or percentile(recent_handshakes, 90) > SLOW_HANDSHAKE_S
                )
                cuts += congested
                busy_cuts += busy
                current = next_rate(current, rate, congested)
                window_at, drops, late = now, dropped, False
                ticks, node_cpu = ticks_now, node_cpu_now
        while self.pending() and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return self._ramped(start, opened, cuts, busy_cuts)

    def _client(self, slot: int) -> Client:
        """A new connection for the user in ``slot``, started."""
        index, token = self.users[slot]
        client = Client(
            self.muxes[index % len(self.muxes)], index, token, self.stats, slot
        )
        self.by_index[index] = client
        self.started.append(client)
        client.start()
        return client

    def _forget(self, client: Client) -> None:
        """Drop an ended client's connection ids from its socket's table."""
        table = client.mux.by_cid
        for cid in client.cids:
            if table.get(cid) is client:
                del table[cid]

    def pending(self) -> int:
        return sum(1 for c in self.clients if c.pending)

    def _ramped(
        self, start: float, opened: int, cuts: int, busy_cuts: int
    ) -> dict[str, Any]:
        logins, self.stats.login_times = self.stats.login_times, []
        handshakes, self.stats.handshake_times = self.stats.handshake_times, []
        return {
            "held": self.held(),
            "pending": self.pending(),
            "ramp_s": time.perf_counter() - start,
            "opened": opened,
            "reopened": self.reopened,
            "rate_cuts": cuts,
            "busy_cuts": busy_cuts,
            "login_s": logins,
            "handshake_s": handshakes,
        }

    def held(self) -> int:
        """Clients logged in, and neither closed nor closing."""
        return sum(1 for c in self.clients if c.up)

    def churn(self, share: float) -> int:
        """Close ``share`` of the logged-in clients, spread over them (the
        users who go home: both of a pair of friends, so those left can
        chat); return how many."""
        every = max(1, round(1 / share)) if share > 0 else 0
        leaving = [
            c for c in self.clients if every and c.up and (c.index // 2) % every == 0
        ]
        for client in leaving:
            client.close()
        return len(leaving)

    def keepalive(self) -> Keepalive:
        """How the client core would keep its connection alive, from the idle
        timeout the server announced (before any login: as for none)."""
        return next(
            (c.keepalive for c in self.clients if c.ready),
            keepalive_plan(None, CLIENT_IDLE_TIMEOUT),
        )

    async def _keepalive(self) -> None:
        """A keepalive on every connection every :meth:`keepalive` interval,
        spread over it (each connection's is due that long after its last):
        a PING, or between PINGs an ACK-only packet when the plan says so."""
        for beat in itertools.count(1):
            plan = self.keepalive()
            ping = plan.pings_at(beat)
            start = time.monotonic()
            clients = list(self.clients)
            # In slices, so that the keepalives spread over the interval.
            slices = max(1, min(len(clients) // 200, int(plan.interval / 0.05)))
            for k in range(slices):
                for client in clients[k::slices]:
                    if client.closed:  # an ended one is not kept alive
                        continue
                    if ping:
                        client.ping()
                        self.pings += 1
                    elif client.keepalive_ack():
                        self.keepalive_acks += 1
                    else:
                        self.pings += 1  # nothing to acknowledge: it PINGed
                await asyncio.sleep(
                    max(
                        0.0,
                        start + plan.interval * (k + 1) / slices - time.monotonic(),
                    )
                )

    async def chat(self, rate: float, duration: float) -> dict[str, Any]:
        """Send ``rate`` messages a second from random users to their friend
        (user 2k and 2k+1 are friends, and always in the same process)."""
        self.stats.latencies = []
        sent = 0
        stop_at = time.perf_counter() + duration
        next_at = time.perf_counter()
        while next_at < stop_at and rate > 0:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            sender = random.choice(self.clients)
            friend = self.by_index.get(sender.index ^ 1)
            if sender.up and friend is not None and friend.up:
                sender.request(
                    SendMessage,
                    to=f"load{friend.index:06d}",
                    client_id=secrets.token_hex(8),
                    text=f"{time.perf_counter()!r} load",
                )
                sent += 1
            next_at += 1.0 / rate
        deadline = time.perf_counter() + 5.0
        while len(self.stats.latencies) < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return {"sent": sent, "latencies": self.stats.latencies}

    async def meet(self, rooms: int, fps: float) -> None:
        """Put the first ``rooms`` x 4 users into meetings whose first member
        publishes video at ``fps`` one-datagram frames a second."""
        for r in range(min(rooms, len(self.clients) // ROOM_SIZE)):
            members = self.clients[r * ROOM_SIZE : (r + 1) * ROOM_SIZE]
            task = asyncio.get_running_loop().create_task(self._meeting(members, fps))
            task.add_done_callback(self._task_done)
            self.tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.stats.errors.append(f"meeting: {task.exception()!r}")

    async def _meeting(self, members: list[Client], fps: float) -> None:
        loop = asyncio.get_running_loop()
        created: asyncio.Future[Any] = loop.create_future()
        members[0].request(CreateRoom, created.set_result)
        room_id = (await created).room.room_id
        for member in members[1:]:
            joined: asyncio.Future[Any] = loop.create_future()
            member.request(JoinRoom, joined.set_result, room_id=room_id)
            assert isinstance(await joined, RoomJoined)
        published: asyncio.Future[Any] = loop.create_future()
        members[0].request(
            PublishTrack,
            published.set_result,
            kind="camera",
            width=320,
            height=240,
            fps=fps,
        )
        reply = await published
        assert isinstance(reply, TrackPublished)
        track_id = reply.track.track_id
        padding = os.urandom(900)
        seq = 0
        while True:
            seq += 1
            stamp = struct.pack("!d", time.perf_counter())
            packet = VideoPacket(
                track_id=track_id,
                seq=seq & 0xFFFF,
                transport_seq=0,
                timestamp=seq * 3000,
                frame_number=seq & 0xFFFF,
                fragment_index=0,
                fragment_count=1,
                keyframe=seq == 1,
                layer=0,
                payload=stamp + padding,
            )
            members[0].send_datagram(packet.serialize())
            await asyncio.sleep(1.0 / fps)

    def media(self) -> list[float]:
        taken, self.stats.media_latencies = self.stats.media_latencies, []
        return taken

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for client in self.clients:
            client.close()
        await asyncio.sleep(0.2)


async def _serve(pipe: Connection, generator: Generator) -> None:
    loop = asyncio.get_running_loop()
    await generator.open()
    # One process plays thousands of users, so it keeps all their objects:
    # Python's full collections walk them all (seconds at 50,000 connections,
    # while no datagram is read and the sockets overflow, which the node would
    # then be blamed for). The node's own remedy, with the same watch on it;
    # it never reclaims here, since an ended client is kept, not garbage.
    collector = CollectorWatch()
    collector.start()
    freezer = HeapFreezer(loop, generator.kept)
    freezer.install()
    monitor = LoopMonitor(warn_after=float("inf"))  # reported, not logged
    monitor.start()
    while True:
        command, args = await loop.run_in_executor(None, pipe.recv)
        cpu = process_cpu_seconds()
        collector.reset()
        monitor.reset()
        if command == "ramp":
            result = await generator.ramp(*args)
        elif command == "chat":
            result = await generator.chat(*args)
        elif command == "meet":
            await generator.meet(*args)
            result = {}
        elif command == "churn":
            result = {"closed": generator.churn(*args)}
        elif command == "media":
            result = {"latencies": generator.media()}
        elif command == "idle":
            result = {
                "pings": generator.pings,
                "keepalive_acks": generator.keepalive_acks,
                "sent": generator.sent(),
                "held": generator.held(),
                "pid": os.getpid(),
                "rss_kib": rss_kib(os.getpid()),
                "cpu_total_s": process_cpu_seconds(),
                "ports": generator.ports(),
            }
        else:
            await generator.close()
            freezer.uninstall()
            collector.stop()
            monitor.stop()
            pipe.send({"errors": generator.stats.errors})
            return
        result["cpu_s"] = process_cpu_seconds() - cpu
        result["errors"] = len(generator.stats.errors)
        result["ended_keys"] = dict(generator.stats.ended_keys)
        result["shed"] = generator.shed()
        result["worst_loop_stall_ms"] = round(monitor.worst_stall_ms, 1)
        result["gc_worst_full_pause_ms"] = round(collector.worst_full_ms, 1)
        result["gc_worst_full_pause_cpu_ms"] = round(collector.worst_full_cpu_ms, 1)
        pipe.send(result)


def serve(
    pipe: Connection,
    server: tuple[str, int],
    users: list[tuple[int, bytes]],
    sockets: int,
    in_flight: int,
    niceness: int = 0,
) -> None:
    """A generator process: answer the commands ``bench/load.py`` sends, at
    ``niceness`` (see ``bench/load.py --generator-nice``)."""
    os.nice(niceness)
    generator = Generator(server, users, sockets, in_flight)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(pipe, generator))
    else:
        # The node's loop: its callbacks and timers cost a generator less.
        uvloop.run(_serve(pipe, generator))
