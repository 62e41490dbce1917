"""A bulk QUIC stream through a netsim bottleneck, on QuicPair's virtual clock.

Shared by the congestion controller's integration test and ``bench/congestion.py``:
two real aioquic connections, a client that keeps one stream full, a link that
carries it (``up``) and an ACK path with the same delay (``down``). Virtual time
makes the figures the same on any machine, however slow.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted, StreamDataReceived
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from codec.media.cc import register_media_congestion_control
from netsim import EndpointEvent, LinkConfig, QuicPair, ScheduleStep

CHUNK = bytes(64 * 1024)
CHAT_MESSAGE_BYTES = 64
"""Size of each chat message: fixed, so arrivals are counted from stream bytes."""
AHEAD_BYTES = 1024 * 1024
"""Bytes the client keeps written beyond what the server has received."""
TICK_S = 0.01
"""Virtual seconds between the client's top-ups and the queue samples."""


@dataclass
class BulkResult:
    """What one bulk run measured."""

    algorithm: str
    received: list[tuple[float, int]] = field(default_factory=list)
    """(virtual time, bytes received so far), one per tick."""
    queue_delay_s: list[tuple[float, float]] = field(default_factory=list)
    """(virtual time, queueing delay of the bottleneck), one per tick: the bytes
    waiting over the rate in force."""
    dropped_queue: int = 0
    """Packets the bottleneck dropped because its queue was full."""
    chat_sent: list[float] = field(default_factory=list)
    """Virtual times the client wrote each chat message."""
    chat_received: list[float] = field(default_factory=list)
    """Virtual times the server had each chat message in full, in order."""

    def chat_delays(self) -> list[float]:
        """Seconds from writing each delivered chat message to its arrival."""
        return [r - s for s, r in zip(self.chat_sent, self.chat_received, strict=False)]

    def goodput_bps(self, start_s: float, end_s: float) -> float:
        """Stream bytes received between two virtual times, in bits per second."""
        first = next(b for t, b in self.received if t >= start_s)
        last = [b for t, b in self.received if t <= end_s][-1]
        return (last - first) * 8 / (end_s - start_s)

    def queue_delays(self, start_s: float, end_s: float) -> list[float]:
        """The queueing delays sampled between two virtual times, in seconds."""
        return [d for t, d in self.queue_delay_s if start_s <= t <= end_s]


def _certificate() -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    valid_from = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(valid_from)
        .not_valid_after(valid_from + datetime.timedelta(days=3650))
        .sign(key, None)
    )
    return cert, key


def connections(algorithm: str) -> tuple[QuicConnection, QuicConnection]:
    """A fresh (client, server) pair, both ends running ``algorithm``."""
    register_media_congestion_control()
    client_configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=["cc-bench"],
        server_name="localhost",
        verify_mode=ssl.CERT_NONE,
        congestion_control_algorithm=algorithm,
    )
    server_configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=["cc-bench"],
        congestion_control_algorithm=algorithm,
    )
    server_configuration.certificate, server_configuration.private_key = _certificate()
    client = QuicConnection(configuration=client_configuration)
    server = QuicConnection(
        configuration=server_configuration,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    return client, server


def run_bulk(
    algorithm: str,
    up: LinkConfig,
    *,
    duration_s: float,
    seed: int = 1,
    up_schedule: Iterable[ScheduleStep] = (),
    chat_interval_s: float | None = None,
) -> BulkResult:
    """Push one stream from client to server through ``up`` for ``duration_s``
    virtual seconds after the handshake; times in the result count from the
    stream's start. With ``chat_interval_s``, the client also writes a small
    message on a second stream that often, as chat beside a file upload."""
    client, server = connections(algorithm)
    down = LinkConfig(delay_s=up.delay_s)
    pair = QuicPair(client, server, up=up, down=down, seed=seed)
    pair.connect()
    if not pair.run_until(
        lambda: pair.has_event("client", HandshakeCompleted), timeout=10
    ):
        raise RuntimeError("the handshake did not complete")
    start = pair.now
    for step in up_schedule:
        changes = step.changes
        pair.call_at(start + step.at_s, lambda c=changes: pair.up.update(pair.now, **c))
    result = BulkResult(algorithm)
    stream_id = client.get_next_available_stream_id()
    chat_stream_id = stream_id + 4
    state = {"written": 0, "received": 0, "chat": 0}

    def on_event(stamped: EndpointEvent) -> None:
        event = stamped.event
        if not isinstance(event, StreamDataReceived) or stamped.side != "server":
            return
        if event.stream_id == stream_id:
            state["received"] += len(event.data)
        elif event.stream_id == chat_stream_id:
            state["chat"] += len(event.data)
            complete = state["chat"] // CHAT_MESSAGE_BYTES
            while len(result.chat_received) < complete:
                result.chat_received.append(pair.now - start)

    def chat() -> None:
        client.send_stream_data(chat_stream_id, bytes(CHAT_MESSAGE_BYTES))
        result.chat_sent.append(pair.now - start)
        if chat_interval_s is not None:
            pair.call_later(chat_interval_s, chat)

    def tick() -> None:
        while state["written"] - state["received"] < AHEAD_BYTES:
            client.send_stream_data(stream_id, CHUNK)
            state["written"] += len(CHUNK)
        rate = pair.up.config.rate_bps
        queued = pair.up.stats.queued_bytes
        result.received.append((pair.now - start, state["received"]))
        result.queue_delay_s.append(
            (pair.now - start, queued * 8 / rate if rate else 0.0)
        )
        pair.call_later(TICK_S, tick)

    pair.on_event(on_event)
    tick()
    if chat_interval_s is not None:
        pair.call_later(chat_interval_s, chat)
    pair.run_for(duration_s)
    result.dropped_queue = pair.up.stats.dropped_queue
    return result
