"""A UDP endpoint for the event loop that batches system calls.

Stands where asyncio's datagram transport stands (the protocols see the same
``connection_made`` / ``datagram_received`` / ``sendto`` interface), but:

- it reads up to :data:`MAX_DATAGRAMS_PER_WAKEUP` datagrams each time the
  socket is readable, coalesced by the kernel (GRO) where it can, so one
  wakeup and a few system calls serve a burst without starving the loop;
- protocols may put off their ``transmit`` until the burst is read
  (:meth:`UdpEndpoint.defer`), so one QUIC connection builds its answer to a
  burst once instead of once per datagram;
- ``sendto`` only queues; the queue is flushed once per loop turn (and at the
  end of each receive burst), one ``sendmsg`` per run of datagrams to one
  address with UDP segmentation offload (GSO) where the kernel has it, or one
  ``sendto`` each where it has not.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, Protocol

from .segments import plan_batches, split

__all__ = [
    "MAX_DATAGRAMS_PER_WAKEUP",
    "MAX_QUEUED_DATAGRAMS",
    "SOCKET_BUFFER_BYTES",
    "Deferrable",
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
RECEIVE_BUFFER_BYTES = 65_535
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
"""Kernel socket buffers asked for: they ride out a busy moment of the loop
instead of dropping datagrams (capped at net.core.rmem_max / wmem_max)."""
_GRO_ANCILLARY = socket.CMSG_SPACE(4)
_SEGMENT_SIZE = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")


class Deferrable(Protocol):
    """What :meth:`UdpEndpoint.defer` calls back: a protocol's transmit."""

    def transmit(self) -> None: ...


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


class UdpEndpoint(asyncio.DatagramTransport):
    """A non-blocking UDP socket on the running loop, driving one protocol.

    Make one with :func:`open_endpoint`. ``gso`` and ``gro`` say whether
    segmentation offload is used for sending and coalescing for receiving;
    both are found out from the kernel unless forced off.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
        *,
        gso: bool = True,
        gro: bool = True,
    ) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname()})
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._protocol = protocol
        self.gso = gso and gso_supported(sock)
        self.gro = gro and _enable_gro(sock)
        self._queue: list[tuple[bytes, Any]] = []
        self._flush_scheduled = False
        self._writing = False
        self._receiving = False
        self._deferred: dict[int, Deferrable] = {}
        self._closing = False
        self.stats = {
            "datagrams_sent": 0,
            "send_calls": 0,
            "datagrams_received": 0,
            "receive_calls": 0,
            "datagrams_dropped": 0,
        }
        """Counters for benchmarks and tests: datagrams and system calls."""
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._read_ready)
        protocol.connection_made(self)

    # -- receiving ------------------------------------------------------------

    def _read_ready(self) -> None:
        received = calls = 0
        self._receiving = True
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
                for datagram in split(data, segment_size):
                    received += 1
                    self._deliver(datagram, addr)
        finally:
            self.stats["datagrams_received"] += received
            self._receiving = False
            # What the deferred transmits queue goes out right below, not on
            # the next turn.
            self._flush_scheduled = True
            self._run_deferred()
            self._flush()

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

    def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, {}
        for protocol in deferred.values():
            try:
                protocol.transmit()
            except Exception as exc:
                self._loop.call_exception_handler(
                    {"message": "exception in transmit", "exception": exc}
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
        self._receiving = False
        self._run_deferred()
        self._flush()
        self._closing = True
        self._deferred.clear()
        self._queue.clear()
        fileno = self._sock.fileno()
        self._loop.remove_reader(fileno)
        if self._writing:
            self._loop.remove_writer(fileno)
        self._sock.close()
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
) -> tuple[UdpEndpoint, asyncio.DatagramProtocol]:
    """Bind a UDP socket to ``local_addr`` (a host name or address and a port,
    0 for any) and return the endpoint and its protocol, as
    ``loop.create_datagram_endpoint`` does."""
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
        endpoint = UdpEndpoint(sock, protocol, gso=gso, gro=gro)
    except BaseException:
        sock.close()
        raise
    return endpoint, protocol
