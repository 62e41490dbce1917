"""One client's QUIC connection: the control stream, upload streams, and limits.

This is the thin asyncio adapter between aioquic and the services. It decodes
frames with :mod:`codec`, refuses what is malformed or over the limits with an
``Error`` reply, queues well-formed requests for :meth:`Router.dispatch` (one
at a time per connection, so replies come in request order), and closes a
connection that keeps misbehaving.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events

from codec import (
    CloseCode,
    ErrorCode,
    FrameDecoder,
    MessageError,
    OversizedFrame,
    decode_request,
    encode_message,
)
from codec.messages import Error, Event, Kicked, Message, Reply, Request
from codec.pmtu import is_padding
from udpio import PathMtuProber, UdpEndpoint
from udpio.ack_delay import install as delay_acks
from udpio.held_events import HoldsEvents
from udpio.pacing import install as granular_pacing
from udpio.queue_delay import wait_out_backlog
from udpio.rtt_samples import install as report_ack_delays
from udpio.short_path import install as short_stream_path
from udpio.short_receive import install as short_receive_path

from .quic_adapter import (
    forget_unacknowledged_acks,
    limit_peer_connection_ids,
    peer_host,
    quic_of,
    release_handshake_state,
    short_ack_path,
    transmit_soon,
    trim_protocol,
)
from .streams import StreamHandler
from .throttle import TokenBucket

if TYPE_CHECKING:
    from .app import ServerApp

__all__ = ["Account", "ClientConnection"]

log = logging.getLogger("quicmeet.connection")

CONTROL_STREAM_ID = 0
"""The control stream is the client's first bidirectional stream."""
MAX_IN_FLIGHT = 256
"""Pipelined requests one connection may have running at once."""


@dataclass(slots=True)
class Account:
    """Who a connection is logged in as."""

    user_id: int
    username: str
    session_id: int
    transfer_only: bool = False
    """A transfer connection of the session (``AttachTransfers``): file
    streams only, no presence, no events."""


class ClientConnection(HoldsEvents, QuicConnectionProtocol):
    """The server side of one client connection."""

    # In slots, not in the instance's dict: with aioquic's 15 attributes the
    # dict held 33 and took 1,584 bytes; it now takes 296, the slots 144.
    __slots__ = (
        "app",
        "account",
        "peer_host",
        "closing",
        "_decoder",
        "_queue",
        "_requests",
        "_strikes",
        "_worker",
        "_in_flight",
        "quic",
        "_streams",
        "_refused",
        "_registered",
        "_control_open",
        "_endpoint",
        "_mtu",
        "max_media_datagram",
        "deadline_seq",
        "deadline_at",
    )

    def __init__(self, *args: Any, app: ServerApp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        trim_protocol(self)
        self.app = app
        self.account: Account | None = None
        self.peer_host = "?"
        self.closing = False
        self._decoder = FrameDecoder()
        self._queue: deque[Request] | None = None
        """Requests waiting for the worker, which runs only while there are any
        (an idle connection holds no task, future or queue: an empty deque
        alone is about 570 bytes)."""
        now = self.app.context.clock.monotonic()
        self._requests = TokenBucket(
            app.config.request_rate, app.config.request_burst, now
        )
        self._strikes = TokenBucket(1.0, app.config.abuse_strikes, now)
        self._worker: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[Reply]] | None = None
        """Pipelined requests running; None while there are none (an empty
        set is 216 bytes in every idle connection)."""
        self.quic = quic_of(self)
        limit_peer_connection_ids(self.quic)
        self._streams: dict[int, StreamHandler] = {}
        """Transfer streams by id, from their first byte until both sides end."""
        self._refused: set[int] | None = None
        """Streams refused at their first byte whose client side has not
        ended; None while there are none."""
        self._registered = False
        self._control_open = False
        self._endpoint: UdpEndpoint | None = None
        self._mtu: PathMtuProber | None = None
        """The path MTU search, from the end of the handshake."""
        self.max_media_datagram = 0
        """The largest DATAGRAM payload (bytes) the connection carries now:
        what its packet size leaves (the SFU forwards nothing larger to it)."""
        self.deadline_seq = 0
        self.deadline_at: float | None = None
        """The connection's timer, in the endpoint's :class:`Deadlines` (not a
        loop timer of its own: ``_send``)."""

    # -- aioquic entry points -------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if isinstance(transport, UdpEndpoint):
            self._endpoint = transport

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            if event.stream_id == CONTROL_STREAM_ID:
                self._control_data(event.data, event.end_stream)
            else:
                self._stream_data(event)
        elif isinstance(event, events.HandshakeCompleted):
            release_handshake_state(self.quic)
            self.peer_host = peer_host(self.quic)
            self._registered = True
            clock = asyncio.get_running_loop().time
            short_receive_path(self.quic)
            delay_acks(self.quic)
            granular_pacing(self.quic)
            report_ack_delays(self.quic)
            if self._endpoint is not None and self._endpoint.shedding:
                wait_out_backlog(
                    self.quic, self._endpoint.backlog, self._endpoint.recovery_classes
                )
            short_stream_path(self.quic)
            short_ack_path(self.quic)
            self._mtu = PathMtuProber(self.quic, clock, self._path_changed)
            self.max_media_datagram = self._mtu.datagram_payload
            self.app.connection_opened(self)
        elif isinstance(event, events.DatagramFrameReceived):
            if not is_padding(event.data):
                self.app.sfu.on_datagram(self, event.data)
        elif isinstance(event, events.StreamReset):
            self._forget_refused(event.stream_id)
            handler = self._streams.get(event.stream_id)
            if handler is not None:
                handler.peer_reset()
        elif isinstance(event, events.StopSendingReceived):
            handler = self._streams.get(event.stream_id)
            if handler is not None:
                handler.peer_stopped()
        elif isinstance(event, events.ConnectionTerminated):
            self._terminated()

    # -- control stream -------------------------------------------------------

    def _control_data(self, data: bytes, end_stream: bool) -> None:
        self._control_open = True
        for frame in self._decoder.feed(data):
            if isinstance(frame, OversizedFrame):
                self._refuse(
                    None,
                    ErrorCode.FRAME_TOO_LARGE,
                    f"frame of {frame.length} bytes is over the 65536-byte limit",
                )
                continue
            try:
                request = decode_request(frame)
            except MessageError as exc:
                self._refuse(exc.rid, exc.code, exc.message)
                continue
            now = self.app.context.clock.monotonic()
            if not self._requests.take(now):
                wait_ms = int(self._requests.wait_time(now) * 1000) + 1
                self._refuse(
                    request.rid, ErrorCode.RATE_LIMITED, "too many requests", wait_ms
                )
                continue
            if self._queue is None:
                self._queue = deque()
            elif len(self._queue) >= self.app.config.max_pending_requests:
                self._refuse(
                    request.rid,
                    ErrorCode.RATE_LIMITED,
                    "too many requests waiting for replies",
                    100,
                )
                continue
            self._queue.append(request)
            if self._worker is None and not self.closing:
                self._worker = asyncio.get_running_loop().create_task(
                    self._serve_requests()
                )
        if end_stream:
            self.close_with(CloseCode.NORMAL, "control stream closed")

    def _refuse(
        self,
        rid: int | None,
        code: ErrorCode,
        message: str,
        retry_after_ms: int | None = None,
    ) -> None:
        self.send(
            Error(
                rid=rid, code=int(code), message=message, retry_after_ms=retry_after_ms
            )
        )
        now = self.app.context.clock.monotonic()
        if not self._strikes.take(now) and not self.closing:
            close_code = (
                CloseCode.ABUSE
                if code == ErrorCode.RATE_LIMITED
                else CloseCode.PROTOCOL_VIOLATION
            )
            log.warning(
                "closing connection from %s: %s", self.peer_host, close_code.name
            )
            self.app.stats["closed_for_abuse"] += 1
            self.close_with(close_code, "too many bad or refused requests")

    async def _serve_requests(self) -> None:
        try:
            while self._queue:
                request = self._queue.popleft()
                if self.app.router.is_pipelined(request):
                    while self._in_flight and len(self._in_flight) >= MAX_IN_FLIGHT:
                        await asyncio.wait(
                            self._in_flight, return_when=asyncio.FIRST_COMPLETED
                        )
                    outcome = self.app.router.start(self, request)
                    if isinstance(outcome, Reply):
                        self.send(outcome)
                        continue
                    task = asyncio.get_running_loop().create_task(outcome)  # type: ignore[arg-type]
                    if self._in_flight is None:
                        self._in_flight = set()
                    self._in_flight.add(task)
                    task.add_done_callback(self._pipelined_done)
                    continue
                reply = await self.app.router.dispatch(self, request)
                if self.closing:
                    return
                self.send(reply)
        finally:
            if self._worker is asyncio.current_task():
                self._worker = None
                if not self._queue:
                    self._queue = None

    def _pipelined_done(self, task: asyncio.Task[Reply]) -> None:
        if self._in_flight is not None:
            self._in_flight.discard(task)
            if not self._in_flight:
                self._in_flight = None
        if not task.cancelled() and not self.closing:
            self.send(task.result())

    # -- other streams --------------------------------------------------------

    def _forget_refused(self, stream_id: int) -> None:
        if self._refused is not None:
            self._refused.discard(stream_id)
            if not self._refused:
                self._refused = None

    def _stream_data(self, event: events.StreamDataReceived) -> None:
        stream_id = event.stream_id
        handler = self._streams.get(stream_id)
        if handler is not None:
            handler.feed(event.data, event.end_stream)
            return
        if self._refused is not None and stream_id in self._refused:
            if event.end_stream:
                self._forget_refused(stream_id)
            return
        # Streams may arrive in any order (a lost first packet delays one), so
        # any client-opened bidirectional stream not seen before is a new one.
        if stream_id % 4 == 0 and not self.closing:
            handler = StreamHandler(self, stream_id)
            self._streams[stream_id] = handler
            handler.feed(event.data, event.end_stream)
            return
        if stream_id % 4 == 0:
            self.reset_stream(stream_id, ErrorCode.SHUTTING_DOWN)
        self.stop_receiving(stream_id, ErrorCode.UNEXPECTED_MESSAGE)
        if not event.end_stream:
            if self._refused is None:
                self._refused = set()
            self._refused.add(stream_id)
        if stream_id % 4 == 2:
            self._refuse(
                None,
                ErrorCode.UNEXPECTED_MESSAGE,
                "the protocol opens no unidirectional streams",
            )

    def stream_done(self, stream_id: int) -> None:
        """Called by a stream handler once both sides of its stream have ended."""
        self._streams.pop(stream_id, None)

    def reset_stream(self, stream_id: int, code: int) -> None:
        """End our side of a stream abruptly."""
        if not self.closing:
            self.quic.reset_stream(stream_id, int(code))
            self.transmit_soon()

    def stop_receiving(self, stream_id: int, code: int) -> None:
        """Ask the client to stop sending on a stream (STOP_SENDING)."""
        if self.closing:
            return
        try:
            self.quic.stop_stream(stream_id, int(code))
        except ValueError:
            return  # aioquic already forgot the stream: both sides are done
        self.transmit_soon()

    def send_on_stream(self, stream_id: int, message: Message, end: bool) -> None:
        """Send one frame on a transfer stream."""
        self.send_stream_bytes(stream_id, encode_message(message), end)

    def send_stream_bytes(self, stream_id: int, data: bytes, end: bool) -> None:
        """Send payload bytes on a transfer stream."""
        if self.closing:
            return
        try:
            self.quic.send_stream_data(stream_id, data, end)
        except RuntimeError:
            # aioquic reset our side on a STOP_SENDING that came in the same
            # packet as what we answer; its event (peer_stopped) comes next.
            return
        self.transmit_soon()

    # -- sending and closing --------------------------------------------------

    def transmit(self) -> None:
        """Send what aioquic has queued, then forget the ACK-only packets an
        idle client will never acknowledge (its keepalives only draw ACKs).

        While the endpoint reads a burst of datagrams this waits for the end
        of the burst: one answer (ACKs, stream data, forwarded media) to all
        of it rather than one per datagram."""
        if self._endpoint is not None and self._endpoint.defer(self):
            return
        if self._mtu is not None and not self.closing and not self._behind():
            self._mtu.probe(self._send)
        self._send()
        if self._registered:
            forget_unacknowledged_acks(self.quic)

    def _send(self) -> None:
        """aioquic's ``transmit``, with the connection's timer kept in the
        endpoint's heap of deadlines instead of a loop timer of its own: a
        loop timer is four objects the collector tracks, made again each time
        a transmit moves it, and a node's full passes walked tens of
        thousands of them (``udpio/deadlines.py``)."""
        endpoint = self._endpoint
        if endpoint is None:
            super().transmit()
            return
        self._transmit_task = None
        now = self._loop.time()
        sendto = endpoint.sendto
        for data, addr in self.quic.datagrams_to_send(now=now):
            sendto(data, addr)
        endpoint.deadlines.arm(self, self.quic.get_timer())

    def on_deadline(self, when: float) -> None:
        """The connection's timer is due (aioquic's ``_handle_timer``)."""
        self.quic.handle_timer(now=max(when, self._loop.time()))
        self._process_events()
        self.transmit()

    def _behind(self) -> bool:
        """Whether the endpoint is behind reading its socket: no path MTU
        probe then (its verdict would be the backlog's, not the path's)."""
        return self._endpoint is not None and self._endpoint.backlog() > 0.0

    def _path_changed(self) -> None:
        # From inside aioquic's ACK or loss processing: the room, which sends
        # its members the new size, hears of it on the next loop turn.
        assert self._mtu is not None
        self.max_media_datagram = self._mtu.datagram_payload
        asyncio.get_running_loop().call_soon(self.app.rooms.path_changed, self)

    def release_cycles(self) -> None:
        """Once the connection has ended (``quic_adapter.release_protocol``):
        drop the path MTU prober, which holds a method of this connection,
        and have the heap freezer check that the connection is then freed."""
        self._mtu = None
        if self._endpoint is not None:
            self._endpoint.deadlines.disarm(self)
        self.app.connection_released(self)

    def transmit_soon(self) -> None:
        """Send what is queued at the end of this loop iteration (or of the
        burst of datagrams being read)."""
        if self._endpoint is not None and self._endpoint.defer(self):
            return
        transmit_soon(self)

    def send(self, message: Message) -> None:
        """Queue ``message`` on the control stream and transmit soon.

        Before the client has opened its control stream there is nowhere to send
        (and no session to tell anything), so the message is dropped.
        """
        if self.closing or not self._control_open:
            return
        self.quic.send_stream_data(CONTROL_STREAM_ID, encode_message(message))
        self.transmit_soon()

    def push(self, event: Event) -> None:
        """Send a server event to this client."""
        self.send(event)

    def kick(self, reason: str, message: str) -> None:
        """Tell the client why its session ends, then close the connection."""
        self.send(Kicked(reason=reason, message=message))
        self.transmit()
        self.close_with(CloseCode.KICKED, reason)

    def close_with(self, code: CloseCode, reason: str) -> None:
        """Close the connection with an application error code."""
        if self.closing:
            return
        self.closing = True
        # Now, even in the middle of a burst being read: once closed, aioquic
        # sends only the CONNECTION_CLOSE and drops the stream data it holds,
        # so an Error queued on the way here (the refusal that ends an abuse)
        # would never reach the client.
        self._send()
        self.close(error_code=int(code), reason_phrase=reason)
        self._terminated()

    def _terminated(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        for task in list(self._in_flight or ()):
            task.cancel()
        for handler in list(self._streams.values()):
            handler.close()
        self._streams.clear()
        self._refused = None
        if self._registered:
            self._registered = False
            self.closing = True
            self.app.connection_closed(self)
