"""A UDP relay that impairs traffic between real clients and a real server.

``ImpairmentProxy`` listens for clients on one UDP socket and relays each client's
datagrams to the upstream server from a socket of its own, like a NAT, so the server
sees one address per client. All clients share one ``Link`` per direction, as flows
through one bottleneck do. The links run on ``loop.time()``, and one timer, set to
the earlier of the two links' ``next_wakeup()``, releases what is due: no task or
sleep per packet.

Use it from tests as an async context manager and change it while it runs::

    lossy = LinkConfig(loss=0.02)
    async with ImpairmentProxy(upstream=server, up=lossy, down=lossy) as proxy:
        connect_client_to(proxy.listen_address)
        proxy.update(delay_s=0.2)  # both directions, from now on

It reads sockets with ``loop.add_reader``, so it needs a selector event loop (the
default on Unix).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .config import LinkConfig, ScheduleStep, validate_schedule
from .errors import ParameterError
from .link import Link, LinkStats

__all__ = ["ImpairmentProxy", "ProxyStats"]

Direction = Literal["up", "down", "both"]

_MAX_DATAGRAM = 65535
# Datagrams read per readiness callback: enough to drain a burst, few enough that
# one busy socket cannot starve the other or the timer.
_READ_BATCH = 64
_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProxyStats:
    """What the proxy has done since it started; a snapshot."""

    up: LinkStats
    """The client-to-server link."""
    down: LinkStats
    """The server-to-client link."""
    clients: int
    """Client addresses with an open relay socket now."""
    refused_datagrams: int
    """Datagrams from new clients dropped because ``max_clients`` were open."""
    send_failures: int
    """Datagrams the kernel would not send (buffer full, port unreachable)."""

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict, for JSON."""
        return {
            "up": self.up.as_dict(),
            "down": self.down.as_dict(),
            "clients": self.clients,
            "refused_datagrams": self.refused_datagrams,
            "send_failures": self.send_failures,
        }


class _Flow:
    """One client: its address and the socket that talks to the server for it."""

    __slots__ = ("client", "sock", "last_active", "closed")

    def __init__(self, client: Any, sock: socket.socket, now: float) -> None:
        self.client = client
        self.sock = sock
        self.last_active = now
        self.closed = False


class _Datagram:
    """A datagram inside a link, tagged with the flow it belongs to."""

    __slots__ = ("data", "flow")

    def __init__(self, data: bytes, flow: _Flow) -> None:
        self.data = data
        self.flow = flow

    def __len__(self) -> int:
        return len(self.data)


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER_BYTES)
        except OSError:
            pass  # the kernel's ceiling applies; the defaults still work


class ImpairmentProxy:
    """Relays UDP between clients and ``upstream`` through two impaired links.

    ``listen`` is the (host, port) clients send to (port 0 picks a free port; read
    it back from ``listen_address``); ``upstream`` the server's (host, port). ``up``
    impairs client-to-server traffic and ``down`` server-to-client; schedules count
    from ``start()``. ``seed`` makes every random decision reproducible for a given
    order of packets. A client silent in both directions for
    ``flow_idle_timeout_s`` loses its relay socket when a new client arrives; at most
    ``max_clients`` are relayed at once.
    """

    def __init__(
        self,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        upstream: tuple[str, int] = ("127.0.0.1", 4433),
        *,
        up: LinkConfig | None = None,
        down: LinkConfig | None = None,
        seed: int | str = 0,
        up_schedule: Iterable[ScheduleStep] = (),
        down_schedule: Iterable[ScheduleStep] = (),
        flow_idle_timeout_s: float = 60.0,
        max_clients: int = 1024,
    ) -> None:
        self._listen = listen
        self._upstream = upstream
        self._configs = (up or LinkConfig(), down or LinkConfig())
        self._schedules = (tuple(up_schedule), tuple(down_schedule))
        for config, schedule in zip(self._configs, self._schedules, strict=True):
            validate_schedule(config, schedule)
        self._seed = seed
        self._flow_idle_timeout_s = flow_idle_timeout_s
        self._max_clients = max_clients
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._upstream_family = socket.AF_INET
        self._upstream_address: Any = None
        self._flows: dict[Any, _Flow] = {}
        self._up: Link[_Datagram] | None = None
        self._down: Link[_Datagram] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._refused = 0
        self._send_failures = 0

    async def __aenter__(self) -> ImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def start(self) -> None:
        """Bind the client-facing socket and start relaying."""
        loop = asyncio.get_running_loop()
        (family, _, _, _, listen_address), *_ = await loop.getaddrinfo(
            *self._listen, type=socket.SOCK_DGRAM
        )
        (upstream_family, _, _, _, upstream_address), *_ = await loop.getaddrinfo(
            *self._upstream, type=socket.SOCK_DGRAM
        )
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _tune(sock)
            sock.bind(listen_address)
        except OSError:
            sock.close()
            raise
        self._loop = loop
        self._sock = sock
        self._upstream_family = upstream_family
        self._upstream_address = upstream_address
        start = loop.time()
        (up, down), (up_schedule, down_schedule) = self._configs, self._schedules
        self._up = Link(up, seed=f"{self._seed}/up", start=start, schedule=up_schedule)
        self._down = Link(
            down, seed=f"{self._seed}/down", start=start, schedule=down_schedule
        )
        loop.add_reader(sock.fileno(), self._on_client_readable)

    def close(self) -> None:
        """Stop relaying and close every socket; packets still in the links are lost."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for flow in list(self._flows.values()):
            self._close_flow(flow)
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    @property
    def listen_address(self) -> tuple[str, int]:
        """The (host, port) clients should send to."""
        if self._sock is None:
            raise RuntimeError("the proxy is not running; call start() first")
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def up_link(self) -> Link[Any]:
        """The client-to-server link."""
        if self._up is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return self._up

    @property
    def down_link(self) -> Link[Any]:
        """The server-to-client link."""
        if self._down is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return self._down

    @property
    def stats(self) -> ProxyStats:
        """Counters of both links and of the relay."""
        return ProxyStats(
            up=self.up_link.stats,
            down=self.down_link.stats,
            clients=len(self._flows),
            refused_datagrams=self._refused,
            send_failures=self._send_failures,
        )

    def update(self, *, direction: Direction = "both", **changes: Any) -> None:
        """Change link parameters from now on, e.g. ``update(loss=0.1)``.

        Names are ``LinkConfig`` fields; ``direction`` is ``up``, ``down`` or
        ``both``. Nothing changes unless the new parameters suit every link named.
        """
        choices = {
            "up": [self.up_link],
            "down": [self.down_link],
            "both": [self.up_link, self.down_link],
        }
        if direction not in choices:
            raise ParameterError(
                "direction", f"unknown direction {direction!r}", "up, down or both"
            )
        links = choices[direction]
        for link in links:
            link.config.replace(**changes)
        assert self._loop is not None
        now = self._loop.time()
        for link in links:
            link.update(now, **changes)
        self._schedule_timer()

    def _on_client_readable(self) -> None:
        assert (
            self._loop is not None and self._sock is not None and self._up is not None
        )
        clock = self._loop.time
        now = clock()
        sock, up, flows = self._sock, self._up, self._flows
        for _ in range(_READ_BATCH):
            try:
                data, client = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error reported on the socket; keep reading
            # Stamp each datagram as it is read: a burst takes a while to read.
            now = clock()
            flow = flows.get(client)
            if flow is None:
                flow = self._open_flow(client, now)
                if flow is None:
                    self._refused += 1
                    continue
            flow.last_active = now
            up.send(_Datagram(data, flow), now)
        self._release(now)

    def _on_server_readable(self, flow: _Flow) -> None:
        assert self._loop is not None and self._down is not None
        clock = self._loop.time
        now = clock()
        down = self._down
        for _ in range(_READ_BATCH):
            try:
                data = flow.sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # e.g. the server's port was unreachable; keep reading
            now = clock()
            flow.last_active = now
            down.send(_Datagram(data, flow), now)
        self._release(now)

    def _open_flow(self, client: Any, now: float) -> _Flow | None:
        assert self._loop is not None
        if len(self._flows) >= self._max_clients:
            self._expire_idle_flows(now)
            if len(self._flows) >= self._max_clients:
                return None
        else:
            self._expire_idle_flows(now)
        sock = socket.socket(self._upstream_family, socket.SOCK_DGRAM)
        try:
            _tune(sock)
            sock.connect(self._upstream_address)
        except OSError:
            sock.close()
            return None
        flow = _Flow(client, sock, now)
        self._flows[client] = flow
        self._loop.add_reader(sock.fileno(), self._on_server_readable, flow)
        return flow

    def _expire_idle_flows(self, now: float) -> None:
        cutoff = now - self._flow_idle_timeout_s
        for flow in [f for f in self._flows.values() if f.last_active < cutoff]:
            self._close_flow(flow)

    def _close_flow(self, flow: _Flow) -> None:
        assert self._loop is not None
        flow.closed = True
        del self._flows[flow.client]
        self._loop.remove_reader(flow.sock.fileno())
        flow.sock.close()

    def _release(self, now: float) -> None:
        """Send what the links hold that is due by ``now``; re-arm the timer."""
        assert (
            self._up is not None and self._down is not None and self._sock is not None
        )
        for datagram in self._up.receive(now):
            flow = datagram.flow
            if flow.closed:
                continue
            try:
                flow.sock.send(datagram.data)
            except OSError:
                self._send_failures += 1
        sock = self._sock
        for datagram in self._down.receive(now):
            try:
                sock.sendto(datagram.data, datagram.flow.client)
            except OSError:
                self._send_failures += 1
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        assert (
            self._loop is not None and self._up is not None and self._down is not None
        )
        up, down = self._up.next_wakeup(), self._down.next_wakeup()
        if up is None:
            wakeup = down
        elif down is None:
            wakeup = up
        else:
            wakeup = min(up, down)
        if wakeup is None:
            return
        if self._timer is not None:
            if self._timer_at <= wakeup:
                return  # the armed timer fires first and re-arms
            self._timer.cancel()
        self._timer = self._loop.call_at(wakeup, self._on_timer)
        self._timer_at = wakeup

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._release(self._loop.time())
