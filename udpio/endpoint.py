"""A UDP endpoint for the event loop that batches system calls.

Stands where asyncio's datagram transport stands (the protocols see the same
``connection_made`` / ``datagram_received`` / ``sendto`` interface), but:

- it reads up to :data:`MAX_DATAGRAMS_PER_WAKEUP` datagrams each time the
  socket is readable, coalesced by the kernel (GRO) where it can, so one
  wakeup and a few system calls serve a burst without starving the loop;
- protocols may put off their ``transmit`` until the burst is read
  (:meth:`UdpEndpoint.defer`), so one QUIC connection builds its answer to a
  burst once instead of once per datagram, and the handling of the events
  the burst's datagrams brought (:meth:`UdpEndpoint.hold_events`; see
  :mod:`udpio.held_events`), so it handles them once too;
- ``sendto`` only queues; the queue is flushed once per loop turn (and at the
  end of each receive burst), one ``sendmsg`` per run of datagrams to one
  address with UDP segmentation offload (GSO) where the kernel has it, or one
  ``sendto`` each where it has not;
- given ``max_receive_delay``, it sheds what waited longer than that in the
  socket (markers it sends itself while it is behind tell how long), and,
  while a queue stands, the datagrams of a shrinking share of the
  connections (:mod:`udpio.queue_delay`). Such a datagram is counted and
  dropped unread, as a router drops what overflows its queue. A node behind
  then answers the connections it serves before they probe again, and the
  others back off; without it, after a stall it works through seconds of
  datagrams whose senders have sent them again (QUIC's probe timeout), and
  each late answer makes more work.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .deadlines import Deadlines
from .initials import opens_connection
from .queue_delay import QueueDelay
from .segments import plan_batches, split

__all__ = [
    "MAX_DATAGRAMS_PER_WAKEUP",
    "MAX_QUEUED_DATAGRAMS",
    "SOCKET_BUFFER_BYTES",
    "Deferrable",
    "HoldsEvents",
    "UdpEndpoint",
    "gso_supported",
    "open_endpoint",
]

log = logging.getLogger("quicmeet.udpio")

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
"""Linux's socket option for GSO (Python 3.11 does not name it)."""
UDP_GRO = getattr(socket, "UDP_GRO", 104)
MAX_DATAGRAMS_PER_WAKEUP = 64
"""Datagrams read per readiness callback before the loop gets a turn (a QUIC
packet costs aioquic 30-100 µs here, so a few milliseconds at most)."""
MAX_QUEUED_DATAGRAMS = 8192
"""Datagrams waiting to be sent past which new ones are dropped, as a full
socket buffer would (QUIC's loss recovery resends what matters)."""
FIRST_FLIGHTS_PER_TURN = 1
"""First flights of new connections handed on per turn of the loop, after the
datagrams of the connections there are (a handshake's first flight costs a
node milliseconds: its keys, its certificate and signature). A loop with
nothing else to do turns at once, so this bounds what a connection's datagram
waits behind, not how fast an idle node lets new connections in."""
MAX_FIRST_FLIGHTS_WAITING = 256
"""First flights waiting for their turn past which new ones are shed."""
FIRST_FLIGHT_MAX_WAIT_S = 0.5
"""Seconds a first flight may wait for its turn; older ones are shed (their
clients have sent them again by then)."""
RECEIVE_BUFFER_BYTES = 65_535
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
"""Kernel socket buffers asked for: they ride out a busy moment of the loop
instead of dropping datagrams (capped at net.core.rmem_max / wmem_max)."""
_GRO_ANCILLARY = socket.CMSG_SPACE(4)
_SEGMENT_SIZE = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")
_MARKER = struct.Struct("!8sQ")
"""A queue-delay marker's payload: the endpoint's token, the marker's number."""


class Deferrable(Protocol):
    """What :meth:`UdpEndpoint.defer` calls back: a protocol's transmit."""

    def transmit(self) -> None: ...


class HoldsEvents(Protocol):
    """What :meth:`UdpEndpoint.hold_events` calls back."""

    def process_events(self) -> None: ...


def gso_supported(sock: socket.socket) -> bool:
    """Whether the kernel offers UDP segmentation offload on ``sock``."""
    try:
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:
        return False
    return True


def _enable_gro(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def _marker_socket(sock: socket.socket) -> socket.socket | None:
    """A socket on this host that sends to ``sock``'s address (a wildcard
    address reached through loopback), or None where none can be opened."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    marker = socket.socket(sock.family, socket.SOCK_DGRAM)
    try:
        marker.setblocking(False)
        marker.bind((host, 0))
        marker.connect((host, port))
    except OSError as exc:
        marker.close()
        log.warning("no queue-delay markers (%s): nothing will be shed", exc)
        return None
    return marker


def _connection_key(data: bytes) -> int:
    """The first byte of a QUIC packet's destination connection id (0 when it
    has none): which connections a node behind serves is chosen by it."""
    if len(data) < 7:
        return 0
    if data[0] & 0x80:  # a long header writes the id's length out
        return data[6] if data[5] else 0
    return data[1]


def _segments(data: bytes, segment_size: int) -> int:
    """How many datagrams a coalesced read of ``data`` holds."""
    return -(-len(data) // segment_size) if segment_size else 1


class UdpEndpoint(asyncio.DatagramTransport):
    """A non-blocking UDP socket on the running loop, driving one protocol.

    Make one with :func:`open_endpoint`. ``gso`` and ``gro`` say whether
    segmentation offload is used for sending and coalescing for receiving;
    both are found out from the kernel unless forced off. With
    ``max_receive_delay`` (seconds), datagrams known to have waited longer
    than that in the socket's queue (and, while a queue stands, those of the
    connections not served, and every datagram that would open a connection:
    :class:`udpio.queue_delay.QueueDelay`) are dropped unread and counted in
    ``stats["datagrams_shed"]`` (``shedding`` says whether it is on: it is
    not where no marker socket could be opened). With it, when the protocol
    has a ``knows_connection_id(cid)`` to tell its connections' ids from
    others, the first flights of new connections wait for their turn, one
    per turn of the loop after its connections' datagrams
    (:data:`FIRST_FLIGHTS_PER_TURN`; at most
    :data:`MAX_FIRST_FLIGHTS_WAITING`, for at most
    :data:`FIRST_FLIGHT_MAX_WAIT_S`); those shed are also counted in
    ``stats["new_connection_datagrams_shed"]``.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
        *,
        gso: bool = True,
        gro: bool = True,
        max_receive_delay: float | None = None,
    ) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname()})
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._protocol = protocol
        self.gso = gso and gso_supported(sock)
        self.gro = gro and _enable_gro(sock)
        self._marker = _marker_socket(sock) if max_receive_delay is not None else None
        self._marker_address = self._marker and self._marker.getsockname()
        self._marker_token = os.urandom(8)
        self.queue_delay = (
            QueueDelay(max_receive_delay)
            if self._marker is not None and max_receive_delay is not None
            else None
        )
        """Markers through the socket's queue (None: nothing is shed)."""
        self.shedding = self.queue_delay is not None
        self._knows: Callable[[bytes], bool] | None = getattr(
            protocol, "knows_connection_id", None
        )
        """The protocol's word on whether a connection id is one of its
        connections: what would open a new one waits for its turn
        (:meth:`_admit_first_flights`), and is shed first while a queue
        stands (:meth:`udpio.queue_delay.QueueDelay.shed`)."""
        self._first_flights: deque[tuple[bytes, int, Any, float]] = deque()
        """New connections' first flights waiting for their turn: (data, its
        GRO segment size, address, time read)."""
        self._admitting = False
        self._backlogged = False
        """The last read stopped at its bound with datagrams left unread."""
        self._marker_failed = False
        self.recovery_classes: dict[type, type] = {}
        """Its connections' loss recovery classes that wait out
        :meth:`backlog` (:func:`udpio.queue_delay.wait_out_backlog`)."""
        self._queue: list[tuple[bytes, Any]] = []
        self._flush_scheduled = False
        self._writing = False
        self._receiving = False
        self._deferred: dict[int, Deferrable] = {}
        self._held: dict[int, HoldsEvents] = {}
        self._closing = False
        self.deadlines = Deadlines(self._loop)
        """The timers of the connections it carries, under one loop timer."""
        self.stats = {
            "datagrams_sent": 0,
            "send_calls": 0,
            "datagrams_received": 0,
            "receive_calls": 0,
            "datagrams_dropped": 0,
            "datagrams_shed": 0,
            "new_connection_datagrams_shed": 0,
        }
        """Counters for benchmarks and tests: datagrams and system calls."""
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._read_ready)
        protocol.connection_made(self)

    # -- receiving ------------------------------------------------------------

    def _read_ready(self) -> None:
        received = calls = 0
        self._receiving = True
        delay = self.queue_delay
        known = self._knows
        if delay is not None and self._backlogged and delay.due(time.monotonic()):
            self._send_marker(delay)
        self._backlogged = True
        try:
            # Calls are bounded too: a run of errors must not hold the loop.
            while (
                received < MAX_DATAGRAMS_PER_WAKEUP
                and calls < MAX_DATAGRAMS_PER_WAKEUP
                and not self._closing
            ):
                calls += 1
                try:
                    if self.gro:
                        data, ancillary, _, addr = self._sock.recvmsg(
                            RECEIVE_BUFFER_BYTES, _GRO_ANCILLARY
                        )
                    else:
                        data, addr = self._sock.recvfrom(RECEIVE_BUFFER_BYTES)
                        ancillary = []
                except (BlockingIOError, InterruptedError):
                    self._backlogged = False
                    if delay is not None:
                        delay.emptied()
                    break
                except OSError as exc:
                    # ICMP errors of earlier sends surface here (port unreachable).
                    self._protocol.error_received(exc)
                    continue
                self.stats["receive_calls"] += 1
                segment_size = 0
                for level, kind, value in ancillary:
                    if level == SOL_UDP and kind == UDP_GRO:
                        segment_size = _GRO_SIZE.unpack_from(value)[0]
                if delay is not None:
                    if addr == self._marker_address:
                        self._marker_read(delay, data)
                        continue
                    # A long header's packet may be a new connection's first
                    # flight: it waits for the connections' datagrams.
                    opens = (
                        len(data) > 6
                        and data[0] & 0x80
                        and opens_connection(data, known)
                    )
                    if delay.in_flight and delay.shed(
                        _connection_key(data), time.monotonic(), bool(opens)
                    ):
                        self._shed(data, segment_size, bool(opens))
                        continue
                    if opens:
                        self._wait_first_flight(data, segment_size, addr)
                        continue
                for datagram in split(data, segment_size):
                    received += 1
                    self._deliver(datagram, addr)
        finally:
            self._end_burst(received)

    def _end_burst(self, received: int) -> None:
        self.stats["datagrams_received"] += received
        self._release_held()
        self._receiving = False
        # What the deferred transmits queue goes out right below, not on
        # the next turn.
        self._flush_scheduled = True
        self._run_deferred()
        self._flush()

    def _shed(self, data: bytes, segment_size: int, opens: bool) -> None:
        shed = _segments(data, segment_size)
        self.stats["datagrams_shed"] += shed
        if opens:
            self.stats["new_connection_datagrams_shed"] += shed

    def _wait_first_flight(self, data: bytes, segment_size: int, addr: Any) -> None:
        """Queue a new connection's first flight for :meth:`_admit_first_flights`
        (shed when too many wait)."""
        if len(self._first_flights) >= MAX_FIRST_FLIGHTS_WAITING:
            self._shed(data, segment_size, True)
            return
        self._first_flights.append((data, segment_size, addr, time.monotonic()))
        if not self._admitting:
            self._admitting = True
            self._loop.call_soon(self._admit_first_flights)

    def _admit_first_flights(self) -> None:
        """Hand on up to :data:`FIRST_FLIGHTS_PER_TURN` waiting first flights
        as a burst of their own, and come back on the next turn for more:
        the datagrams the loop reads meanwhile, the connections', go first."""
        self._admitting = False
        if self._closing:
            return
        received = admitted = 0
        self._receiving = True
        try:
            now = time.monotonic()
            waiting = self._first_flights
            while waiting and admitted < FIRST_FLIGHTS_PER_TURN:
                data, segment_size, addr, at = waiting.popleft()
                if now - at > FIRST_FLIGHT_MAX_WAIT_S:
                    self._shed(data, segment_size, True)
                    continue
                admitted += 1
                for datagram in split(data, segment_size):
                    received += 1
                    self._deliver(datagram, addr)
        finally:
            self._end_burst(received)
            if self._first_flights and not self._admitting and not self._closing:
                self._admitting = True
                self._loop.call_soon(self._admit_first_flights)

    def backlog(self) -> float:
        """Seconds what is unread in the socket has waited at least: how far
        behind reading is (0 when it is not, or when nothing is measured)."""
        delay = self.queue_delay
        return 0.0 if delay is None else delay.waited(time.monotonic())

    def _send_marker(self, delay: QueueDelay) -> None:
        assert self._marker is not None
        number = delay.sent(time.monotonic())
        try:
            # A full queue drops it without an error: the next marker read,
            # or the queue found empty, forgets it.
            self._marker.send(_MARKER.pack(self._marker_token, number))
        except OSError as exc:
            # It never entered the queue, so it bounds nothing behind it.
            delay.not_sent(number)
            if not self._marker_failed:
                self._marker_failed = True
                log.warning("a queue-delay marker could not be sent (%s)", exc)

    def _marker_read(self, delay: QueueDelay, data: bytes) -> None:
        if len(data) == _MARKER.size:
            token, number = _MARKER.unpack(data)
            if token == self._marker_token:
                delay.read(number, time.monotonic())

    def _deliver(self, data: bytes, addr: Any) -> None:
        try:
            self._protocol.datagram_received(data, addr)
        except Exception as exc:  # one bad datagram must not lose the burst
            self._loop.call_exception_handler(
                {
                    "message": "exception in datagram_received",
                    "exception": exc,
                    "protocol": self._protocol,
                }
            )

    def defer(self, protocol: Deferrable) -> bool:
        """Put off ``protocol.transmit()`` until the burst being read is done;
        False (nothing put off) when no burst is being read."""
        if not self._receiving:
            return False
        self._deferred[id(protocol)] = protocol
        return True

    def hold_events(self, protocol: HoldsEvents) -> bool:
        """Put off ``protocol.process_events()`` until the burst being read
        is done (it runs then, before the transmits put off, so what it
        sends joins them); False (nothing put off) when no burst is being
        read."""
        if not self._receiving:
            return False
        self._held[id(protocol)] = protocol
        return True

    def _release_held(self) -> None:
        # Still receiving: the transmits the events ask for are put off with
        # the burst's others and built once.
        while self._held:
            held, self._held = self._held, {}
            self._call_each(held.values(), "process_events")

    def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, {}
        self._call_each(deferred.values(), "transmit")

    def _call_each(self, protocols: Any, method: str) -> None:
        """Call ``method`` of each protocol; one that raises is reported and
        the others are still called."""
        for protocol in protocols:
            try:
                getattr(protocol, method)()
            except Exception as exc:
                self._loop.call_exception_handler(
                    {"message": f"exception in {method}", "exception": exc}
                )

    # -- sending --------------------------------------------------------------

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Queue one datagram to ``addr``; it leaves at the end of this loop
        turn (or of the receive burst being handled)."""
        if self._closing:
            return
        if len(self._queue) >= MAX_QUEUED_DATAGRAMS:
            self.stats["datagrams_dropped"] += 1
            return
        self._queue.append((bytes(data), addr))
        if not (self._flush_scheduled or self._receiving or self._writing):
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue or self._writing or self._closing:
            return
        queued, self._queue = self._queue, []
        batches = plan_batches(queued, self.gso)
        for index, batch in enumerate(batches):
            try:
                self._send(batch.datagrams, batch.segment_size, batch.addr)
            except (BlockingIOError, InterruptedError):
                rest = [(d, b.addr) for b in batches[index:] for d in b.datagrams]
                self._queue[:0] = rest
                self._writing = True
                self._loop.add_writer(self._sock.fileno(), self._write_ready)
                return
            except OSError as exc:
                self.stats["datagrams_dropped"] += len(batch.datagrams)
                self._protocol.error_received(exc)

    def _send(self, datagrams: list[bytes], segment_size: int, addr: Any) -> None:
        if len(datagrams) == 1:
            self._sock.sendto(datagrams[0], addr)
        else:
            try:
                self._sock.sendmsg(
                    datagrams,
                    [(SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(segment_size))],
                    0,
                    addr,
                )
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                # The device cannot segment (no checksum offload): send plainly
                # from now on.
                log.info("UDP segmentation offload refused (%s); sending plainly", exc)
                self.gso = False
                for data in datagrams:
                    self._sock.sendto(data, addr)
                    self.stats["send_calls"] += 1
                self.stats["datagrams_sent"] += len(datagrams)
                return
        self.stats["send_calls"] += 1
        self.stats["datagrams_sent"] += len(datagrams)

    def _write_ready(self) -> None:
        self._loop.remove_writer(self._sock.fileno())
        self._writing = False
        self._flush()

    # -- the transport interface ------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Run the transmits put off by this burst, send what is queued if the
        socket takes it, stop reading, close the socket and tell the protocol
        (``connection_lost``) on the next turn."""
        if self._closing:
            return
        # A protocol closing while a burst is read has its last transmit
        # (its CONNECTION_CLOSE) put off: send it before the socket goes.
        self._release_held()
        self._receiving = False
        self._run_deferred()
        self._flush()
        self._closing = True
        self._held.clear()
        self._deferred.clear()
        self._queue.clear()
        self._first_flights.clear()
        fileno = self._sock.fileno()
        self._loop.remove_reader(fileno)
        if self._writing:
            self._loop.remove_writer(fileno)
        self._sock.close()
        if self._marker is not None:
            self._marker.close()
        self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return len(self._queue)


async def open_endpoint(
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
    local_addr: tuple[str, int],
    *,
    gso: bool = True,
    gro: bool = True,
    max_receive_delay: float | None = None,
) -> tuple[UdpEndpoint, asyncio.DatagramProtocol]:
    """Bind a UDP socket to ``local_addr`` (a host name or address and a port,
    0 for any) and return the endpoint and its protocol, as
    ``loop.create_datagram_endpoint`` does (the options: :class:`UdpEndpoint`)."""
    loop = asyncio.get_running_loop()
    host, port = local_addr
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        sock.bind(address)
        protocol = protocol_factory()
        endpoint = UdpEndpoint(
            sock, protocol, gso=gso, gro=gro, max_receive_delay=max_receive_delay
        )
    except BaseException:
        sock.close()
        raise
    return endpoint, protocol
