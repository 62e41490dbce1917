"""The client side of one QUIC connection: control stream, requests, uploads.

A thin adapter over aioquic. :func:`open_connection` connects, checks the
certificate (pinned fingerprint or CA), and opens the control stream. Requests are
matched to replies by ``rid``; server events go to the ``on_event`` callback;
when the connection ends every waiting request fails with ``ConnectionLost``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from cryptography.hazmat.primitives import serialization

from codec import (
    ALPN,
    CloseCode,
    FrameDecoder,
    MessageError,
    OversizedFrame,
    decode_server_message,
    encode_message,
)
from codec.media.cc import MediaCongestionControl, register_media_congestion_control
from codec.messages import Error, Event, Kicked, Reply, Request, StreamRequest
from codec.pmtu import is_padding
from udpio import PathMtuProber, UdpEndpoint, open_endpoint
from udpio.ack_delay import install as delay_acks
from udpio.controller import replace_congestion_control
from udpio.held_events import HoldsEvents
from udpio.mtu_probe import datagram_payload_limit
from udpio.pacing import install as granular_pacing
from udpio.rtt_samples import install as report_ack_delays
from udpio.short_acks import install as short_ack_path
from udpio.short_acks import owe_keepalive_ack
from udpio.short_path import install as short_stream_path
from udpio.short_receive import install as short_receive_path

from .errors import ClientError, ConnectionFailed, ConnectionLost, ServerError
from .quic_adapter import (
    close_event,
    congestion_control,
    limit_peer_connection_ids,
    peer_certificate,
    peer_idle_timeout,
    pending_datagrams,
    quic_of,
    release,
    set_idle_timer,
    smoothed_rtt,
    transmit_soon,
    unanswered_since,
)

__all__ = [
    "ClientProtocol",
    "Keepalive",
    "StreamListener",
    "keepalive_plan",
    "open_connection",
]

log = logging.getLogger("quicmeet.client")

CONTROL_STREAM_ID = 0
KEEPALIVE_INTERVAL = 1.5
"""Seconds between QUIC PINGs, well inside the server's idle timeout."""
IDLE_TIMEOUT = 5.0
LONG_IDLE_TIMEOUT = 30.0
"""A server that announces an idle timeout at least this long asks its clients
for fewer PINGs (a node holding many connections: docs/operations.md); they
PING at a third of it and watch for the server's silence themselves."""
ANNOUNCED_IDLE_TIMEOUT = 600.0
"""The idle timeout a client announces, so that the server's decides how long
the server waits for a silent client; the client's own ``idle_timeout`` then
decides, on its side, how long it trusts a silent server."""


class Keepalive(NamedTuple):
    """How a client keeps its connection alive (:func:`keepalive_plan`)."""

    interval: float
    """Seconds between keepalives."""
    idle_timer: float
    """aioquic's idle timer (seconds of silence after the last packet
    received, or after the first ack-eliciting packet sent since)."""
    watch: bool
    """Whether the client must give up a silent server itself: true when the
    idle timer is the server's long one."""
    pings_every: int = 1
    """Every how many keepalives one is a PING; the others are ACK-only
    packets, which the server processes (restarting its idle timer) but does
    not answer (:func:`udpio.short_acks.owe_keepalive_ack`)."""

    def pings_at(self, beat: int) -> bool:
        """Whether keepalive number ``beat`` (from 1) is a PING."""
        return beat % self.pings_every == 0


def keepalive_plan(server_idle: float | None, idle_timeout: float) -> Keepalive:
    """The keepalive for a server that announced ``server_idle`` seconds (None:
    nothing) and a client that trusts a silent server ``idle_timeout`` s.

    Below :data:`LONG_IDLE_TIMEOUT` the shorter of the two is the idle timer
    and a PING goes every 1.5 s at most, three to a timer. A server announcing
    a long one pays for every client's keepalives (100,000 connections PINGing
    every 1.5 s are 67,000 a second): they go at a third of it, the idle
    timer is the server's, and the client declares the server gone when what
    it sent has had no answer for ``idle_timeout`` s. Every second keepalive
    is then an ACK-only packet instead of a PING: it keeps the server's idle
    timer and a NAT's binding as fresh, and costs the server its receipt
    alone, where a PING also costs it an ACK-only packet back. Only the
    PINGs, two thirds of the server's timer apart, draw an answer, so the
    client's own idle timer is twice the server's (a PING whose answer is
    late, the server behind, leaves the client as much time as before); the
    watch gives a dead server up long before. An idle client notices a dead
    server at its next PING plus ``idle_timeout``.
    """
    if server_idle is not None and server_idle >= LONG_IDLE_TIMEOUT:
        return Keepalive(server_idle / 3, 2 * server_idle, True, 2)
    timer = min(idle_timeout, server_idle) if server_idle else idle_timeout
    return Keepalive(min(KEEPALIVE_INTERVAL, timer / 3), timer, False)


class ClientProtocol(HoldsEvents, QuicConnectionProtocol):
    """One connection to a quicmeet server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quic = quic_of(self)
        self.on_event: Callable[[Event], None] = lambda event: None
        self.on_closed: Callable[[ClientProtocol], None] = lambda proto: None
        self.on_datagram: Callable[[bytes], None] = lambda data: None
        self.close_code: int | None = None
        self.close_reason = ""
        self.kicked: Kicked | None = None
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._decoder = FrameDecoder()
        self._streams: dict[int, StreamListener] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self._ended = False
        self._endpoint: UdpEndpoint | None = None
        self._mtu: PathMtuProber | None = None
        """The path MTU search, from the end of the handshake."""
        self.keepalive = Keepalive(KEEPALIVE_INTERVAL, IDLE_TIMEOUT, False)
        self.idle_timeout = IDLE_TIMEOUT
        """How long a silent server is trusted (seconds; :func:`keepalive_plan`)."""
        self._congestion_control = self.quic.configuration.congestion_control_algorithm

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if isinstance(transport, UdpEndpoint):
            self._endpoint = transport

    def transmit(self) -> None:
        """Send what aioquic has queued; while the endpoint reads a burst of
        datagrams, once at the end of the burst instead."""
        if self._endpoint is not None and self._endpoint.defer(self):
            return
        if self._mtu is not None and not self._ended:
            self._mtu.probe(super().transmit)
        super().transmit()

    @property
    def max_media_datagram(self) -> int:
        """The largest DATAGRAM payload (bytes) one packet carries now."""
        return datagram_payload_limit(self.quic)

    @property
    def max_datagram_size(self) -> int:
        """The UDP payload size packets are built to now (bytes): 1,200 until
        the path MTU search finds the path carries more."""
        return self._mtu.packet_size if self._mtu is not None else 1200

    def transmit_soon(self) -> None:
        """Send what is queued at the end of this loop turn (or of the burst
        of datagrams being read): requests made in one turn share packets."""
        if self._endpoint is not None and self._endpoint.defer(self):
            return
        transmit_soon(self)

    @property
    def udp_stats(self) -> dict[str, int]:
        """The socket's counters (datagrams and system calls, from udpio);
        empty on another transport."""
        return dict(self._endpoint.stats) if self._endpoint is not None else {}

    @property
    def is_open(self) -> bool:
        return not self._ended

    def peer_fingerprint(self) -> str:
        """SHA-256 of the certificate the server presented (hex)."""
        cert = peer_certificate(self.quic)
        if cert is None:
            raise ConnectionFailed("the server presented no certificate")
        der = cert.public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()

    def start(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        """Begin keepalives, delayed ACKs (:mod:`udpio.ack_delay`), pacing
        the loop's timers can keep (:mod:`udpio.pacing`), RTT samples the
        controller can take the peer's ACK delay out of
        (:mod:`udpio.rtt_samples`), the short paths for sending stream
        packets (:mod:`udpio.short_path`) and ACK-only ones
        (:mod:`udpio.short_acks`), and for receiving the steady state's
        (:mod:`udpio.short_receive`), and the path MTU search once
        the handshake is done; a server silent for
        ``idle_timeout`` seconds is given up (:func:`keepalive_plan`)."""
        clock = asyncio.get_running_loop().time
        short_receive_path(self.quic)
        delay_acks(self.quic)
        granular_pacing(self.quic)
        report_ack_delays(self.quic)
        short_stream_path(self.quic)
        short_ack_path(self.quic)
        self._mtu = PathMtuProber(self.quic, clock)
        self.idle_timeout = idle_timeout
        self.keepalive = keepalive_plan(peer_idle_timeout(self.quic), idle_timeout)
        set_idle_timer(self.quic, self.keepalive.idle_timer)
        self._keepalive = asyncio.get_running_loop().create_task(self._keepalive_loop())

    async def _keepalive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        plan = self.keepalive
        # Watching, look at the server's silence a few times per idle_timeout.
        tick = plan.interval
        if plan.watch:
            tick = min(plan.interval, self.idle_timeout / 4)
        pinged = loop.time()
        beats = itertools.count(1)
        while not self._ended:
            await asyncio.sleep(tick)
            now = loop.time()
            if plan.watch and (silent := unanswered_since(self.quic)) is not None:
                if now - silent >= self.idle_timeout:
                    self._give_up(now - silent)
                    return
            if now - pinged >= plan.interval - tick / 2:
                pinged = now
                # Between PINGs, an ACK-only packet the server does not answer.
                if plan.pings_at(next(beats)) or not owe_keepalive_ack(self.quic, now):
                    self.quic.send_ping(0)
                self.transmit()

    def _give_up(self, silent_for: float) -> None:
        """The server has answered nothing for too long: end as aioquic's idle
        timeout would, without waiting for the server's long one."""
        self.close_reason = f"the server answered nothing for {silent_for:.1f} s"
        log.info("%s; giving the connection up", self.close_reason)
        self.close()
        self._end()

    # -- requests -------------------------------------------------------------

    def next_rid(self) -> int:
        return next(self._rids)

    async def request(self, message: Request, timeout: float = 30.0) -> Reply:
        """Send ``message`` and return its reply; raise ``ServerError`` on ``Error``."""
        if self._ended:
            raise ConnectionLost("the connection is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._pending[message.rid] = future
        expiry = loop.call_later(timeout, _expire, future, timeout)
        try:
            self.quic.send_stream_data(CONTROL_STREAM_ID, encode_message(message))
            # Coalesce: requests made in the same loop turn share packets.
            self.transmit_soon()
            reply = await future
        finally:
            expiry.cancel()
            self._pending.pop(message.rid, None)
        if isinstance(reply, Error):
            raise ServerError(reply.code, reply.message, reply.retry_after_ms)
        return reply

    def send_raw_control(self, data: bytes) -> None:
        """Put bytes on the control stream as they are (for tests of bad input)."""
        self.quic.send_stream_data(CONTROL_STREAM_ID, data)
        self.transmit()

    async def upload(
        self, message: StreamRequest, data: bytes, timeout: float = 60.0
    ) -> Reply:
        """Open a stream, send ``message`` then ``data``, and return the reply."""
        if self._ended:
            raise ConnectionLost("the connection is closed")
        waiter = _StreamReply(asyncio.get_running_loop().create_future())
        stream_id = self.open_stream(waiter, encode_message(message) + data, end=True)
        try:
            reply = await asyncio.wait_for(waiter.future, timeout)
        finally:
            self.close_stream(stream_id)
        if isinstance(reply, Error):
            raise ServerError(reply.code, reply.message, reply.retry_after_ms)
        return reply

    def open_stream(
        self, listener: StreamListener, first: bytes, end: bool = False
    ) -> int:
        """Open a bidirectional stream with ``first`` as its opening bytes; what
        the server sends on it goes to ``listener``.

        The bytes go out at once: aioquic allocates a stream id only when data is
        written, so two streams opened back to back must each write first.
        """
        if self._ended:
            raise ConnectionLost("the connection is closed")
        stream_id = self.quic.get_next_available_stream_id()
        self._streams[stream_id] = listener
        self.quic.send_stream_data(stream_id, first, end)
        self.transmit_soon()
        return stream_id

    def send_stream(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """Queue bytes on a stream opened with :meth:`open_stream`; bytes for a
        stream the server stopped (or that both sides ended) are dropped."""
        if self._ended:
            raise ConnectionLost("the connection is closed")
        try:
            self.quic.send_stream_data(stream_id, data, end)
        except (RuntimeError, ValueError):
            # A STOP_SENDING reset our side (RuntimeError), or the stream is
            # gone (ValueError): the server will not read these bytes, and
            # its reply or reset tells the stream's listener why.
            return
        self.transmit_soon()

    def close_stream(self, stream_id: int, error_code: int | None = None) -> None:
        """Stop listening to a stream; with ``error_code`` also reset it."""
        self._streams.pop(stream_id, None)
        if error_code is not None and not self._ended:
            try:
                self.quic.reset_stream(stream_id, error_code)
                self.quic.stop_stream(stream_id, error_code)
            except ValueError:
                pass  # already finished in that direction
            self.transmit_soon()

    # -- datagrams -------------------------------------------------------------

    @property
    def datagrams_queued(self) -> int:
        """Datagrams handed to aioquic and not yet sent (its queue never expires)."""
        return len(pending_datagrams(self.quic))

    def set_media_rate(self, rate_bps: float) -> None:
        """What the media hop's estimate lets media send (bits per second):
        the connection's congestion window does not hold them below it
        (``MediaCongestionControl.set_media_rate``; another controller
        ignores it)."""
        controller = congestion_control(self.quic)
        if isinstance(controller, MediaCongestionControl):
            controller.set_media_rate(rate_bps / 8)

    @property
    def congestion_control(self) -> str:
        """The name of the controller this connection runs on now."""
        return self._congestion_control

    def use_congestion_control(self, algorithm: str) -> None:
        """Run this connection on a fresh controller of ``algorithm`` (a name
        registered with aioquic) from now on: an upload pump's connection
        gives way to a meeting's media while the meeting lasts and takes the
        path back after it (``client/transfers/pump.py``)."""
        if algorithm != self._congestion_control:
            replace_congestion_control(self.quic, algorithm)
            self._congestion_control = algorithm
            self.transmit_soon()

    @property
    def rtt_ms(self) -> float | None:
        """Smoothed round-trip time to the server in milliseconds (None before
        the first sample)."""
        rtt = smoothed_rtt(self.quic)
        return rtt * 1000.0 if rtt is not None else None

    def send_datagrams(self, datagrams: Sequence[bytes], max_queued: int) -> bool:
        """Send a burst of DATAGRAM frames with one transmit, or none of them
        when that would leave more than ``max_queued`` waiting in aioquic."""
        if self._ended or self.datagrams_queued + len(datagrams) > max_queued:
            return False
        for data in datagrams:
            self.quic.send_datagram_frame(data)
        self.transmit()
        return True

    # -- events from aioquic --------------------------------------------------

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.DatagramFrameReceived):
            if not is_padding(event.data):
                self.on_datagram(event.data)
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id == CONTROL_STREAM_ID:
                self._control_data(event.data)
            else:
                listener = self._streams.get(event.stream_id)
                if listener is not None:
                    listener.data_received(event.data, event.end_stream)
        elif isinstance(event, events.StreamReset):
            listener = self._streams.pop(event.stream_id, None)
            if listener is not None:
                listener.broken(
                    ConnectionLost(f"the server reset the stream ({event.error_code})")
                )
        elif isinstance(event, events.ConnectionTerminated):
            self.close_code = event.error_code
            self.close_reason = event.reason_phrase
            self._end()

    def _control_data(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if isinstance(frame, OversizedFrame):
                log.warning("server sent an oversized frame; skipped")
                continue
            try:
                message = decode_server_message(frame)
            except MessageError as exc:
                log.warning("server sent a bad frame: %s", exc)
                continue
            if isinstance(message, Reply):
                future = self._pending.get(message.rid) if message.rid else None
                if future is not None and not future.done():
                    future.set_result(message)
                elif isinstance(message, Error):
                    log.warning("server error without a request: %s", message.message)
            else:
                if isinstance(message, Kicked):
                    self.kicked = message
                self.on_event(message)

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(ConnectionLost("the connection was closed"))
        for listener in list(self._streams.values()):
            listener.broken(ConnectionLost("the connection was closed"))
        self._streams.clear()
        release(self)
        self.on_closed(self)

    def close_quietly(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection; requests still waiting fail with ConnectionLost."""
        if not self._ended:
            self.close(error_code=code, reason_phrase=reason)
            self._end()


def _expire(future: asyncio.Future[Reply], timeout: float) -> None:
    if not future.done():
        future.set_exception(ConnectionLost(f"no reply within {timeout:g} s"))


class StreamListener(Protocol):
    """Receives what the server sends on one client-opened stream."""

    def data_received(self, data: bytes, end: bool) -> None:
        """Bytes arrived (``end``: the server finished its side)."""

    def broken(self, error: ClientError) -> None:
        """The stream or the connection broke."""


class _StreamReply:
    """Collects the one reply frame the server writes on an upload stream."""

    def __init__(self, future: asyncio.Future[Reply]) -> None:
        self.future = future
        self._decoder = FrameDecoder()

    def broken(self, error: ClientError) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def data_received(self, data: bytes, end: bool) -> None:
        for frame in self._decoder.feed(data):
            if self.future.done() or isinstance(frame, OversizedFrame):
                continue
            try:
                message = decode_server_message(frame)
            except MessageError as exc:
                self.future.set_exception(ConnectionLost(f"bad reply: {exc}"))
                continue
            if isinstance(message, Reply):
                self.future.set_result(message)


def client_configuration(
    ca_file: Path | None,
    server_name: str | None,
    idle_timeout: float = IDLE_TIMEOUT,
    congestion_control: str | None = None,
) -> QuicConfiguration:
    """The QUIC configuration of a client connection. ``congestion_control``
    is the name of a registered controller other than the media controller
    (``register_scavenger_congestion_control()``: an upload pump that starts
    while a meeting runs, docs/adaptation.md)."""
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=[ALPN],
        max_datagram_frame_size=65536,
        server_name=server_name,
        # Announced: the server decides when it gives a silent client up; the
        # client's own limit is set on its side after the handshake.
        idle_timeout=max(idle_timeout, ANNOUNCED_IDLE_TIMEOUT),
        # Media, files and chat share the connection: a controller that random
        # loss does not collapse and that keeps the queue short (docs/congestion.md).
        congestion_control_algorithm=congestion_control
        or register_media_congestion_control(),
    )
    if ca_file is not None:
        configuration.load_verify_locations(cafile=str(ca_file))
        configuration.verify_mode = ssl.CERT_REQUIRED
    else:
        configuration.verify_mode = ssl.CERT_NONE
    return configuration


async def open_connection(
    host: str,
    port: int,
    *,
    ca_file: Path | None = None,
    timeout: float = 10.0,
    idle_timeout: float = IDLE_TIMEOUT,
    configuration: QuicConfiguration | None = None,
    congestion_control: str | None = None,
) -> ClientProtocol:
    """Connect to ``host:port`` and finish the handshake (``congestion_control``:
    see :func:`client_configuration`).

    With ``ca_file`` the certificate must chain to that CA and match ``host``;
    without it nothing is checked here and the caller pins the fingerprint.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ConnectionFailed(f"cannot resolve {host}: {exc}") from None
    family, _, _, _, addr = infos[0]
    if configuration is None:
        is_name = not _is_ip(host)
        server_name = host if is_name or ca_file else None
        configuration = client_configuration(
            ca_file, server_name, idle_timeout, congestion_control
        )
    else:
        # Each connection's own: the idle timer is set on it after the handshake.
        configuration = dataclasses.replace(configuration)
    connection = QuicConnection(configuration=configuration)
    limit_peer_connection_ids(connection)
    local = "::" if family == socket.AF_INET6 else "0.0.0.0"
    transport, protocol = await open_endpoint(
        lambda: ClientProtocol(connection), (local, 0)
    )
    assert isinstance(protocol, ClientProtocol)
    protocol.connect(addr)
    try:
        await asyncio.wait_for(protocol.wait_connected(), timeout)
    except (TimeoutError, ConnectionError) as exc:
        ended = close_event(connection)
        reason = ended.reason_phrase if ended else ""
        protocol.close_quietly()
        transport.close()
        timed_out = isinstance(exc, asyncio.TimeoutError)
        detail = reason or ("no answer (timed out)" if timed_out else "refused")
        raise ConnectionFailed(f"cannot connect to {host}:{port}: {detail}") from None
    protocol.start(idle_timeout)
    return protocol


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
