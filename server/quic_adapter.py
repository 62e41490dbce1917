"""The one place the server reaches into aioquic's private attributes.

aioquic offers no public way to read a connection's peer address, its queue of
datagrams waiting to be sent, or the socket of a listening server (path MTU
probes reach aioquic through :mod:`udpio.mtu_probe`). Each such access is a
function here, so that an aioquic upgrade breaks one module (and the test that
checks these attributes still exist) instead of the services.
``pyproject.toml`` pins aioquic below the next minor version for the same reason.

The memory an idle connection costs is trimmed here too (aioquic keeps its
handshake buffers, a per-connection table of frame handlers, every ACK-only
packet it sent to a peer that only pings, four queues that are empty while
the connection idles, eight connection ids from its peer, the crypto pairs
and packet number spaces of the epochs it has left, a set of up to 256
recently received packet numbers, and objects with an instance dict for its
flow-control limits and packet spaces; see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, TypeVar

from aioquic import tls
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.connection import END_STATES, Limit, QuicConnection
from aioquic.quic.crypto import CryptoContext, CryptoPair, NoCallback
from aioquic.quic.rangeset import RangeSet
from aioquic.quic.recovery import (
    QuicPacketNumberWindow,
    QuicPacketRecovery,
    QuicPacketSpace,
)
from aioquic.quic.retry import QuicRetryTokenHandler

from codec.media.cc import (
    MediaCongestionControl,
    ScavengerCongestionControl,
    register_media_congestion_control,
    register_scavenger_congestion_control,
)
from udpio.controller import replace_congestion_control
from udpio.initials import carries_token, opens_connection
from udpio.short_acks import ShortAcks
from udpio.short_acks import install as install_short_acks
from udpio.short_path import ShortStreams
from udpio.short_receive import ShortReceive

from .quic_fastpath import FastDatagramSender
from .quic_fastpath import install as install_fast_path

__all__ = [
    "ConnectionRouter",
    "PEER_CONNECTION_IDS",
    "PRIVATE_ATTRIBUTES",
    "IdleQueue",
    "PacketNumberWindow",
    "PacketSpace",
    "SlimLimit",
    "SpentTls",
    "fast_datagram_path",
    "forget_unacknowledged_acks",
    "holds_handshake_buffers",
    "idle_queues",
    "limit_peer_connection_ids",
    "peer_connection_ids",
    "pending_datagrams",
    "peer_host",
    "quic_of",
    "release_connection",
    "release_handshake_state",
    "release_protocol",
    "sent_packet_records",
    "spent_packet_spaces",
    "spent_crypto_pairs",
    "server_socket",
    "set_media_rate",
    "short_ack_path",
    "short_acks_sent",
    "short_packets_received",
    "short_datagram_packets",
    "short_stream_packets",
    "smoothed_rtt",
    "transmit_soon",
    "trim_protocol",
]

_FRAME_HANDLERS = "_QuicConnection__frame_handlers"
"""aioquic's per-connection dict: frame type -> (bound handler, allowed epochs)."""

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnectionProtocol: ("_quic", "_transmit_soon", "_transmit_task", "_closed"),
    asyncio.Event: ("_waiters",),
    QuicConnection: (
        "_network_paths",
        "_datagrams_pending",
        "_loss",
        "_crypto_buffers",
        "_crypto_streams",
        "_cryptos",
        "_cryptos_initial",
        "_quic_logger",
        "_spaces",
        "_events",
        "_local_max_data",
        "_local_max_streams_bidi",
        "_local_max_streams_uni",
        "_local_active_connection_id_limit",
        "_peer_cid",
        "_peer_cid_available",
        "_host_cids",
        "_original_destination_connection_id",
        "_retry_source_connection_id",
        "_handshake_complete",
        _FRAME_HANDLERS,
    ),
    QuicPacketRecovery: ("_rtt_initialized", "_rtt_smoothed", "_cc", "spaces"),
    QuicPacketNumberWindow: ("_lower", "_received", "_size"),
    CryptoContext: ("_setup_cb", "_teardown_cb"),
    QuicServer: (
        "_transport",
        "_protocols",
        "_configuration",
        "_create_protocol",
        "_retry",
    ),
}
"""Which private attribute of which aioquic class this module reads."""


PRUNE_EVERY_S = 0.01
"""How often a router past its limit of unvalidated handshakes looks for
finished ones: a handshake finished since asks one Retry too many at worst."""


class ConnectionRouter(QuicServer):
    """aioquic's ``QuicServer`` (which routes each datagram to its connection
    by connection id), with two changes:

    - it forgets an ended connection without walking every connection:
      aioquic copies and scans its whole table of connection ids for each one
      that ends. A node holding 100,000 connections scans 300,000 entries per
      ended connection, and a wave of ended handshakes (a burst of lost
      datagrams, a client process that dies) then keeps the node's CPU busy
      for minutes doing only that;
    - a datagram with a short header (every packet of an established
      connection) is routed by the connection id at its start, where aioquic
      parses a general header into an object first (4 % of a node's samples
      during an upload). What aioquic does with such a datagram is only that
      lookup: no version to negotiate, no connection to create; one too short
      to hold a connection id, or without the fixed bit, it drops.

    It also tells its endpoint which connection ids are its connections'
    (:meth:`knows_connection_id`), so that a node behind serves them before
    new ones.

    And it asks a new connection to prove its address with a Retry (RFC 9000,
    section 8.1.2) while ``max_unvalidated_handshakes`` handshakes it began
    without one are unfinished, as quic-go's ``MaxUnvalidatedHandshakes``
    does (None: never). A handshake begun costs the node its keys, its
    certificate's signature and its first flight's four datagrams, and then
    retransmissions and a connection held until the handshake's idle timeout
    for a client that never answers; a Retry costs one sealed token and one
    small datagram, and keeps nothing. So a flood of first flights (spoofed,
    or from a client that never goes on) no longer holds the node's CPU,
    while a real client pays one round trip more, and only while the node
    is flooded. The token is aioquic's (address, connection ids and time,
    sealed with AES-GCM under a key of the process, good for 30 s);
    aioquic checks one that comes back, and closes with ``INVALID_TOKEN``
    on a forged, expired or replayed-elsewhere one.
    """

    def __init__(
        self, *, max_unvalidated_handshakes: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._max_unvalidated = max_unvalidated_handshakes
        self._tokens = (
            QuicRetryTokenHandler() if max_unvalidated_handshakes is not None else None
        )
        self._unvalidated: dict[QuicConnectionProtocol, None] = {}
        """Connections begun without a Retry (insertion order), until their
        handshake is found complete or they end."""
        self._prune_at = 0.0
        self.stats = {"retries_sent": 0, "retry_tokens_refused": 0}
        create = self._create_protocol

        def created(connection: QuicConnection, **kwargs: Any) -> Any:
            protocol = create(connection, **kwargs)
            if connection._retry_source_connection_id is None:
                self._unvalidated[protocol] = None
            return protocol

        self._create_protocol = created

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        first = data[0] if data else 0x80
        if not first & 0x80:  # a short header
            end = 1 + self._configuration.connection_id_length
            if first & 0x40 and len(data) >= end:
                protocol = self._protocols.get(data[1:end])  # type: ignore[call-overload]
                if protocol is not None:
                    protocol.datagram_received(data, addr)
            return
        assert isinstance(data, bytes)
        if self._tokens is None or not opens_connection(data, self.knows_connection_id):
            super().datagram_received(data, addr)
            return
        # aioquic's server answers a first flight with a Retry while its
        # ``_retry`` is set, and checks the token of one that has a token.
        token = carries_token(data)
        if token or self._must_validate():
            self._retry = self._tokens
            if not token:
                self.stats["retries_sent"] += 1
        try:
            super().datagram_received(data, addr)
        finally:
            self._retry = None
        if token and not self.knows_connection_id(data[6 : 6 + data[5]]):
            self.stats["retry_tokens_refused"] += 1

    def _must_validate(self) -> bool:
        """Whether a new connection is to prove its address first: as many
        handshakes as the limit, begun without a Retry, are unfinished.
        Finished ones are looked for at most every ``PRUNE_EVERY_S`` (under a
        flood every first flight asks, and the table is the limit long)."""
        assert self._max_unvalidated is not None
        table = self._unvalidated
        if len(table) < self._max_unvalidated:
            return False
        now = time.monotonic()
        if now >= self._prune_at:
            self._prune_at = now + PRUNE_EVERY_S
            for protocol in [p for p in table if p._quic._handshake_complete]:
                del table[protocol]
        return len(table) >= self._max_unvalidated

    def knows_connection_id(self, cid: bytes) -> bool:
        """Whether ``cid`` routes to one of its connections (the endpoint
        hands on what would open a new one after its connections' datagrams,
        and sheds it first while it is behind)."""
        return cid in self._protocols

    def _connection_terminated(self, protocol: QuicConnectionProtocol) -> None:
        self._unvalidated.pop(protocol, None)
        table = self._protocols
        for cid in connection_ids(protocol._quic):
            if table.get(cid) is protocol:
                del table[cid]
        # Called from inside aioquic's event processing, which goes on using
        # the connection: its cycles are cut once that returned.
        asyncio.get_running_loop().call_soon(release_protocol, protocol)


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass


def release_protocol(protocol: QuicConnectionProtocol) -> None:
    """Cut the reference cycles of an ended server connection's protocol (the
    router's three handlers aioquic gives it, each a ``partial`` holding it)
    and of its connection (:func:`release_connection`), so that reference
    counting frees both when the last outside reference goes, without the
    cyclic collector (which no longer sees them once the heap is frozen:
    ``server.heap``). The protocol's own cycles are its
    ``release_cycles()``, when it has one."""
    protocol._connection_id_issued_handler = _ignore  # type: ignore[assignment]
    protocol._connection_id_retired_handler = _ignore  # type: ignore[assignment]
    protocol._connection_terminated_handler = _ignore  # type: ignore[assignment]
    release = getattr(protocol, "release_cycles", None)
    if release is not None:
        release()
    release_connection(protocol._quic)


def release_connection(quic: QuicConnection) -> None:
    """Cut the reference cycles of an ended connection: aioquic's loss
    recovery holds the connection's probe method, the trimmed frame handler
    table holds the connection, and the methods our adapters installed on it
    (the SFU's short DATAGRAM path and the wrappers it puts around aioquic's
    methods) hold the connection's own bound methods, and through the SFU's
    pacer the member's hop. Every method an adapter set on the instance is
    dropped, which leaves aioquic's. Only once it has ended: aioquic reads no
    datagram, runs no timer and sends nothing for a connection in its end
    states."""
    assert quic._state in END_STATES, quic._state
    quic._loss._send_probe = _ignore  # type: ignore[assignment]
    if isinstance(getattr(quic, _FRAME_HANDLERS), _FrameHandlers):
        setattr(quic, _FRAME_HANDLERS, MappingProxyType({}))
    installed = vars(quic)
    for name in [
        name
        for name, value in installed.items()
        if callable(value) and hasattr(type(quic), name)
    ]:
        del installed[name]


def connection_ids(quic: QuicConnection) -> list[bytes]:
    """Every id the server may have routed to this connection: those it
    issued and has not seen retired, and the one its client chose first (or,
    after a retry, the one the retry gave)."""
    cids = [entry.cid for entry in quic._host_cids]
    cids.append(quic.host_cid)
    cids.append(quic._original_destination_connection_id)
    if quic._retry_source_connection_id is not None:
        cids.append(quic._retry_source_connection_id)
    return cids


def trim_protocol(protocol: QuicConnectionProtocol) -> None:
    """aioquic's protocol has an ``asyncio.Event`` for its end, whose waiters
    are a deque: a 64-slot block, 0.7 KiB, for the one or no waiter it ever
    has. A list does what the event does with it (append, remove, iterate)."""
    protocol._closed._waiters = []  # type: ignore[assignment]


def quic_of(protocol: QuicConnectionProtocol) -> QuicConnection:
    """The sans-I/O connection behind an asyncio protocol."""
    return protocol._quic


def transmit_soon(protocol: QuicConnectionProtocol) -> None:
    """Have the protocol send what is queued at the end of this loop iteration
    (one ``transmit`` for many queued frames)."""
    protocol._transmit_soon()


def peer_host(quic: QuicConnection) -> str:
    """The IP address the connection's first network path came from, or "?"."""
    paths = quic._network_paths
    return str(paths[0].addr[0]) if paths else "?"


def pending_datagrams(quic: QuicConnection) -> deque[bytes]:
    """The connection's queue of DATAGRAM payloads not yet sent (unbounded in
    aioquic: the SFU reads its length and drops what would be late).

    A connection trimmed while idle holds an :class:`IdleQueue` there, whose
    ``append`` and ``popleft`` are Python calls; the queue is made a deque
    again here, since whoever asks for it (the SFU, when the connection joins
    a room) is about to queue a datagram for every one it forwards."""
    pending = quic._datagrams_pending
    if isinstance(pending, IdleQueue):
        pending = quic._datagrams_pending = deque(pending)
    return pending


def fast_datagram_path(
    quic: QuicConnection, refill: Callable[[float], int] | None = None
) -> bool:
    """Have the connection build its packets of DATAGRAM frames alone on a
    short path (:mod:`server.quic_fastpath`, which reads aioquic's private
    attributes too); for a connection about to receive forwarded media.

    ``refill(now)`` is called before each round of packets the connection
    sends, to top its DATAGRAM queue up (it returns how many it queued).
    False when the connection is not one this path can take (then nothing
    calls ``refill``)."""
    sender = install_fast_path(quic)
    if sender is None:
        return False
    if refill is not None:
        sender.refill = refill
    return True


def short_ack_path(quic: QuicConnection) -> None:
    """Have the connection build its packets that carry only an ACK (the
    answer to a keepalive PING, most of an upload's packets) on a short path
    (:mod:`udpio.short_acks`); call after :func:`udpio.ack_delay.install`
    and before :func:`fast_datagram_path`."""
    install_short_acks(quic)


def short_acks_sent() -> int:
    """How many ACK-only packets this process built on the short path."""
    return ShortAcks.sent


def short_datagram_packets() -> int:
    """How many packets of DATAGRAM frames alone this process built on the
    short path (:mod:`server.quic_fastpath`)."""
    return FastDatagramSender.sent


def short_stream_packets() -> int:
    """How many packets of a stream this process built on the short path
    (:mod:`udpio.short_path`)."""
    return ShortStreams.sent


def short_packets_received() -> int:
    """How many packets this process received on the short path
    (:mod:`udpio.short_receive`)."""
    return ShortReceive.received


def quiet_packets_received() -> int:
    """How many of those changed nothing to answer or hand on (ACKs that
    acknowledged nothing new: an idle client's keepalives between its PINGs),
    so that the node skipped their events and transmit
    (:mod:`udpio.short_receive`)."""
    return ShortReceive.quiet


def set_media_rate(quic: QuicConnection, rate_bps: float) -> None:
    """Tell the connection's congestion controller what the media plane's
    estimate lets the media of this connection send (bits per second; 0:
    none), so that its window makes room for them
    (``MediaCongestionControl.set_media_rate``; another controller: nothing)."""
    controller = getattr(getattr(quic, "_loss", None), "_cc", None)
    if isinstance(controller, MediaCongestionControl):
        controller.set_media_rate(rate_bps / 8)


def give_way(quic: QuicConnection, meeting: bool) -> bool:
    """Run a connection that carries only files on the scavenger controller
    while its user is in a ``meeting`` (it gives way to the media), on the
    media controller otherwise (it holds its share); whether it changed
    (:mod:`udpio.controller`)."""
    controller = getattr(getattr(quic, "_loss", None), "_cc", None)
    if isinstance(controller, ScavengerCongestionControl) == meeting:
        return False
    if meeting:
        replace_congestion_control(quic, register_scavenger_congestion_control())
    else:
        replace_congestion_control(quic, register_media_congestion_control())
    return True


def smoothed_rtt(quic: QuicConnection) -> float | None:
    """The connection's smoothed round-trip time in seconds, None before its
    first sample (the SFU sizes retransmission deadlines with it)."""
    loss = quic._loss
    return loss._rtt_smoothed if loss._rtt_initialized else None


def server_socket(server: QuicServer) -> socket.socket:
    """The UDP socket a listening server reads and writes."""
    sock: socket.socket = server._transport.get_extra_info("socket")
    return sock


# -- memory of an idle connection ---------------------------------------------

PEER_CONNECTION_IDS = 2
"""Connection ids a server connection asks its client for (the active one and
a spare): the least RFC 9000 allows. aioquic asks for 8, each about 240 bytes
kept for the connection's life; a client that changes network uses the spare
and gets another one issued as it retires the old."""


def limit_peer_connection_ids(quic: QuicConnection) -> None:
    """Ask the client for :data:`PEER_CONNECTION_IDS` connection ids; call
    before the connection receives its first datagram (the limit travels in
    the server's transport parameters)."""
    quic._local_active_connection_id_limit = PEER_CONNECTION_IDS


def peer_connection_ids(quic: QuicConnection) -> int:
    """How many of the client's connection ids the connection keeps."""
    return len(quic._peer_cid_available) + (quic._peer_cid is not None)


class IdleQueue(list):  # type: ignore[type-arg]
    """Stands in for the deques aioquic gives each connection (its events,
    its DATAGRAM frames waiting, and each network path's challenges): an empty
    deque holds a 64-slot block, about 760 bytes, while an empty list holds
    nothing but itself. The queues are short, so ``popleft`` (O(n) on a list)
    costs less than a deque's allocation would. ``maxlen`` drops the oldest
    item past it, as a bounded deque does."""

    __slots__ = ("maxlen",)

    def __init__(self, items: Any = (), maxlen: int | None = None) -> None:
        super().__init__(items)
        self.maxlen = maxlen

    def popleft(self) -> Any:
        """Remove and return the oldest item; ``IndexError`` when empty."""
        return self.pop(0)

    def append(self, item: Any) -> None:
        super().append(item)
        if self.maxlen is not None and len(self) > self.maxlen:
            del self[0]


def idle_queues(quic: QuicConnection) -> list[Any]:
    """The queues :func:`release_handshake_state` swaps for :class:`IdleQueue`
    ones: the connection's events and DATAGRAM frames, each path's challenges."""
    paths = [(p.local_challenges, p.remote_challenges) for p in quic._network_paths]
    return [quic._events, quic._datagrams_pending, *(q for p in paths for q in p)]


def _swap_idle_queues(quic: QuicConnection) -> None:
    # aioquic annotates these as deques; an IdleQueue does all it asks of them
    # (tests/server/test_idle_connection.py runs every kind of traffic after).
    if not isinstance(quic._events, IdleQueue):
        quic._events = IdleQueue(quic._events)  # type: ignore[assignment]
    if not isinstance(quic._datagrams_pending, IdleQueue):
        quic._datagrams_pending = IdleQueue(quic._datagrams_pending)  # type: ignore[assignment]
    for path in quic._network_paths:
        if not isinstance(path.local_challenges, IdleQueue):
            path.local_challenges = IdleQueue(  # type: ignore[assignment]
                path.local_challenges, path.local_challenges.maxlen
            )
        if not isinstance(path.remote_challenges, IdleQueue):
            path.remote_challenges = IdleQueue(path.remote_challenges)  # type: ignore[assignment]


class PacketNumberWindow:
    """Stands in for aioquic's duplicate detection window
    (``QuicPacketNumberWindow``): the same answers, from a bit mask.

    aioquic keeps the packet numbers received within the last 128 in a set,
    pruned only once it holds 256: an idle connection answering keepalives
    carries a set of 128-256 ints (8-16 KiB) for good, more than everything
    else it keeps. Bit ``i`` of the mask is packet number ``lower + i``;
    numbers below ``lower`` count as received, as in aioquic.
    """

    __slots__ = ("_bits", "_lower", "_size")

    def __init__(self, lower: int = 0, received: Any = (), size: int = 128) -> None:
        self._lower = lower
        self._size = size
        self._bits = 0
        for number in received:
            if number >= lower:
                self._bits |= 1 << (number - lower)

    @classmethod
    def replacing(cls, window: QuicPacketNumberWindow) -> PacketNumberWindow:
        """The window that answers as ``window`` does from now on."""
        return cls(window._lower, window._received, window._size)

    def add(self, packet_number: int) -> None:
        """Record ``packet_number`` as received; the window ends at the
        largest number recorded."""
        if packet_number < self._lower:
            return
        lower = packet_number - self._size + 1
        if lower > self._lower:
            self._bits >>= lower - self._lower
            self._lower = lower
        self._bits |= 1 << (packet_number - self._lower)

    def __contains__(self, packet_number: int) -> bool:
        if packet_number < self._lower:
            return True
        return bool(self._bits >> (packet_number - self._lower) & 1)


class SpentTls:
    """Stands in for a server connection's TLS context after its handshake
    (about 2.5 KiB with what it refers to: the client's extensions, the
    handshake's transcript hashes and key schedules, its own extension list).

    What aioquic still reads of it: the state and the negotiated outcome.
    The 1-RTT keys and their updates live in the connection's crypto pairs,
    not here. A server expects no TLS message after its handshake in QUIC
    (no KeyUpdate, no ticket from a client), so CRYPTO data of the 1-RTT
    epoch is answered with the alert aioquic's context would send once the
    message was complete: unexpected message.
    """

    __slots__ = (
        "alpn_negotiated",
        "client_random",
        "early_data_accepted",
        "session_resumed",
        "state",
    )

    def __init__(self, context: tls.Context) -> None:
        self.state = context.state
        self.alpn_negotiated = context.alpn_negotiated
        self.early_data_accepted = context.early_data_accepted
        self.session_resumed = context.session_resumed
        self.client_random = context.client_random  # names keys in a key log

    def handle_message(self, input_data: bytes, output_buf: Any) -> None:
        """Refuse any TLS message (``tls.AlertUnexpectedMessage``)."""
        raise tls.AlertUnexpectedMessage("no TLS message expected after the handshake")


_S = TypeVar("_S")

_SPENT_PAIR = CryptoPair()
"""One crypto pair with no keys, shared by every trimmed connection in place
of the pairs of the epochs it has left: a packet of such an epoch fails to
decrypt (no key) and is dropped, as it was by the torn-down pair."""


def _in_slots(cls: type[_S], source: object) -> _S:
    """A ``cls`` (a class of ``__slots__`` alone) holding what ``source``
    holds in its instance dict under the same names."""
    slim = cls.__new__(cls)
    for name in cls.__slots__:  # type: ignore[attr-defined]
        setattr(slim, name, getattr(source, name))
    return slim


class SlimLimit:
    """Stands in for aioquic's flow-control ``Limit`` (the connection's
    MAX_DATA and its two MAX_STREAMS limits): the same attributes in slots
    instead of an instance dict, about 0.4 KiB less each."""

    __slots__ = tuple(vars(Limit(frame_type=0, name="", value=0)))

    @classmethod
    def replacing(cls, limit: Limit) -> SlimLimit:
        """A limit whose attributes are those of ``limit``."""
        return _in_slots(cls, limit)


_LIMITS = ("_local_max_data", "_local_max_streams_bidi", "_local_max_streams_uni")


def _slim_limits(quic: QuicConnection) -> None:
    for attribute in _LIMITS:
        limit = getattr(quic, attribute)
        if not isinstance(limit, SlimLimit):
            setattr(quic, attribute, SlimLimit.replacing(limit))


class PacketSpace:
    """Stands in for aioquic's ``QuicPacketSpace`` of the 1-RTT epoch: the
    same attributes in slots instead of an instance dict (about 0.5 KiB
    less)."""

    __slots__ = tuple(vars(QuicPacketSpace()))

    @classmethod
    def replacing(cls, space: QuicPacketSpace) -> PacketSpace:
        """A space whose attributes are those of ``space``."""
        return _in_slots(cls, space)


class _SpentPacketSpace:
    """One discarded packet number space shared by every trimmed connection
    in place of its Initial and Handshake spaces (about 1.1 KiB each with
    their ack ranges, duplicate window and sent-packet dict). aioquic only
    reads a discarded space: its packets no longer decrypt (their crypto
    pair is the shared one without keys), loss recovery finds nothing in
    flight in it, and a close skips it; the ranges and window it holds are
    only written for a space that is not discarded. Its attributes cannot be
    assigned and its sent packets are a read-only mapping, so a write that
    would leak from one connection to another fails instead."""

    __slots__ = ()
    ack_at = None
    ack_queue = RangeSet()
    discarded = True
    expected_packet_number = 0
    is_application_data = False
    largest_received_packet = -1
    largest_received_time = None
    received_packets = PacketNumberWindow()
    ack_eliciting_in_flight = 0
    largest_acked_packet = 0
    loss_time = None
    sent_packets: MappingProxyType[int, Any] = MappingProxyType({})


_SPENT_SPACE = _SpentPacketSpace()


def _slim_packet_spaces(quic: QuicConnection) -> None:
    spaces = quic._spaces
    recovery_spaces = quic._loss.spaces
    for epoch, space in list(spaces.items()):
        if isinstance(space, PacketSpace | _SpentPacketSpace):
            continue
        if epoch == tls.Epoch.ONE_RTT:
            replacement: Any = PacketSpace.replacing(space)
        elif space.discarded and not space.sent_packets:
            replacement = _SPENT_SPACE
        else:
            continue
        spaces[epoch] = replacement
        for index, held in enumerate(recovery_spaces):
            if held is space:
                recovery_spaces[index] = replacement


def spent_packet_spaces(quic: QuicConnection) -> int:
    """How many of the connection's packet number spaces are the shared
    discarded one (after its trim: Initial and Handshake)."""
    return sum(space is _SPENT_SPACE for space in quic._spaces.values())


def _share_spent_crypto_pairs(quic: QuicConnection) -> None:
    cryptos = quic._cryptos
    for epoch, pair in list(cryptos.items()):
        if epoch != tls.Epoch.ONE_RTT and not (
            pair.recv.is_valid() or pair.send.is_valid()
        ):
            cryptos[epoch] = _SPENT_PAIR
    initial = quic._cryptos_initial
    for version, pair in list(initial.items()):
        if not (pair.recv.is_valid() or pair.send.is_valid()):
            initial[version] = _SPENT_PAIR


_SHARED_HANDLERS: dict[int, tuple[Callable[..., None], frozenset[tls.Epoch]]] = {}
"""aioquic's frame handler table as plain functions and shared epoch sets,
built from the first connection that is trimmed (the table is the same for
every connection of a given aioquic version)."""


class _FrameHandlers:
    """Stands in for aioquic's per-connection frame handler dict (33 bound
    methods and 33 frozensets, about 12 KiB a connection): binds the shared
    handler on lookup. An unknown frame type raises ``KeyError`` as the dict
    did, which aioquic turns into FRAME_ENCODING_ERROR."""

    __slots__ = ("_quic",)

    def __init__(self, quic: QuicConnection) -> None:
        self._quic = quic

    def __getitem__(self, frame_type: int) -> tuple[Any, frozenset[tls.Epoch]]:
        function, epochs = _SHARED_HANDLERS[frame_type]
        return function.__get__(self._quic), epochs


def spent_crypto_pairs(quic: QuicConnection) -> int:
    """How many of the connection's crypto pairs are the shared one without
    keys (after its trim: Initial for each version, Handshake, unused 0-RTT)."""
    pairs = [*quic._cryptos.values(), *quic._cryptos_initial.values()]
    return sum(pair is _SPENT_PAIR for pair in pairs)


def _share_frame_handlers(quic: QuicConnection) -> None:
    table = getattr(quic, _FRAME_HANDLERS)
    if isinstance(table, _FrameHandlers):
        return
    if not _SHARED_HANDLERS:
        epoch_sets: dict[frozenset[tls.Epoch], frozenset[tls.Epoch]] = {}
        for frame_type, (handler, epochs) in table.items():
            shared = epoch_sets.setdefault(epochs, epochs)
            _SHARED_HANDLERS[frame_type] = (handler.__func__, shared)
    setattr(quic, _FRAME_HANDLERS, _FrameHandlers(quic))


def release_handshake_state(quic: QuicConnection) -> None:
    """Free what a server connection kept only for its handshake.

    Call on ``HandshakeCompleted``: a server confirms the handshake at once, so
    its Initial and Handshake keys are gone and its TLS context answers any
    further CRYPTO data with an alert before writing anything. Frees the three
    16 KiB buffers TLS wrote its handshake messages into, the CRYPTO streams
    of the discarded Initial and Handshake epochs, the TLS key schedules, the
    key-logging callbacks of each key phase when no qlog is kept, and swaps
    the frame handler table for one shared by all connections and aioquic's
    queues for :class:`IdleQueue` ones, the TLS context for a
    :class:`SpentTls`, the crypto pairs of the Initial and Handshake epochs
    (and of 0-RTT when unused) for one shared pair without keys, the
    duplicate detection window for a :class:`PacketNumberWindow`, the
    flow-control limits for :class:`SlimLimit` ones, the 1-RTT packet
    number space for a :class:`PacketSpace` and the discarded Initial and
    Handshake spaces for one shared read-only space. Raises
    ``ValueError`` on a connection whose server handshake has not completed.
    """
    if (
        quic.configuration.is_client
        or quic.tls.state != tls.State.SERVER_POST_HANDSHAKE
    ):
        raise ValueError("only a server connection past its handshake is trimmed")
    quic._crypto_buffers = {}
    for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE):
        if quic._spaces[epoch].discarded:
            # Only CRYPTO frames of packets decrypted in that epoch reach these.
            quic._crypto_streams.pop(epoch, None)
    if not isinstance(quic.tls, SpentTls):
        quic.tls = SpentTls(quic.tls)  # type: ignore[assignment]
    if quic._quic_logger is None:
        for pair in quic._cryptos.values():
            for context in (pair.recv, pair.send):
                context._setup_cb = NoCallback
                context._teardown_cb = NoCallback
    _share_frame_handlers(quic)
    _swap_idle_queues(quic)
    _share_spent_crypto_pairs(quic)
    _slim_limits(quic)
    space = _application_space(quic)
    if not isinstance(space.received_packets, PacketNumberWindow):
        space.received_packets = PacketNumberWindow.replacing(space.received_packets)  # type: ignore[assignment]
    _slim_packet_spaces(quic)


def holds_handshake_buffers(quic: QuicConnection) -> bool:
    """Whether the connection still keeps TLS's handshake output buffers."""
    return bool(quic._crypto_buffers)


def _application_space(quic: QuicConnection) -> QuicPacketSpace:
    return quic._spaces[tls.Epoch.ONE_RTT]


def forget_unacknowledged_acks(quic: QuicConnection) -> int:
    """Drop the record of sent ACK-only packets while nothing ack-eliciting is
    in flight; return how many were dropped.

    aioquic keeps every packet it sent until it is acknowledged or declared
    lost, but a peer acknowledges only ack-eliciting packets, and detecting a
    loss needs a later acknowledgement: a connection that only answers its
    client's keepalive PINGs would keep one record (about 340 bytes) per PING
    for as long as it stays idle. The records only serve to trim the ranges
    our ACK frames repeat, which aioquic caps anyway. Packets that count
    towards bytes in flight are kept (the congestion controller needs them).
    """
    space = _application_space(quic)
    if space.ack_eliciting_in_flight or not space.sent_packets:
        return 0
    stale = [n for n, packet in space.sent_packets.items() if not packet.in_flight]
    for number in stale:
        del space.sent_packets[number]
    return len(stale)


def sent_packet_records(quic: QuicConnection) -> int:
    """How many sent 1-RTT packets the connection still keeps a record of."""
    return len(_application_space(quic).sent_packets)
