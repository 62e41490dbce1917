"""QuicPair: QUIC endpoints on a virtual clock through impaired links."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted, StreamDataReceived

from netsim import EndpointEvent, LinkConfig, QuicPair, ScheduleStep

Connections = Callable[[], tuple[QuicConnection, QuicConnection]]

LOSSY = LinkConfig(
    delay_s=0.03, jitter_s=0.005, loss=0.05, rate_bps=5e6, queue_delay_s=0.2
)
PAYLOAD = bytes(range(256)) * 1000  # 256 kB


def received(pair: QuicPair, side: str = "server") -> bytes:
    return b"".join(
        event.data
        for event in pair.events_of(side, StreamDataReceived)  # type: ignore[arg-type]
    )


def finished(pair: QuicPair, side: str = "server") -> Callable[[], bool]:
    def done() -> bool:
        return any(
            event.end_stream
            for event in pair.events_of(side, StreamDataReceived)  # type: ignore[arg-type]
        )

    return done


def transfer(connections: Connections, seed: int) -> QuicPair:
    client, server = connections()
    pair = QuicPair(client, server, up=LOSSY, down=LOSSY, seed=seed)
    pair.connect()
    assert pair.run_until(
        lambda: pair.has_event("client", HandshakeCompleted), timeout=10
    )
    client.send_stream_data(
        client.get_next_available_stream_id(), PAYLOAD, end_stream=True
    )
    assert pair.run_until(finished(pair), timeout=60)
    return pair


def signature(pair: QuicPair) -> list[tuple[Any, ...]]:
    """The event sequence without the random bytes (connection IDs) inside it."""
    return [
        (
            event.time,
            event.side,
            type(event.event).__name__,
            getattr(event.event, "stream_id", None),
            len(getattr(event.event, "data", b"") or b""),
        )
        for event in pair.events
    ]


def test_handshake_and_transfer_over_a_lossy_link(
    quic_connections: Connections,
) -> None:
    started = time.perf_counter()
    pair = transfer(quic_connections, seed=1)
    wall_s = time.perf_counter() - started
    assert received(pair) == PAYLOAD
    assert pair.up.stats.dropped_loss > 0 and pair.down.stats.dropped_loss > 0
    # 256 kB at 5 Mbit/s with 5% loss takes seconds of virtual time.
    assert pair.now > 0.5
    assert pair.now > 2 * wall_s


def test_same_seed_gives_the_same_events(quic_connections: Connections) -> None:
    first = signature(transfer(quic_connections, seed=4))
    assert first == signature(transfer(quic_connections, seed=4))
    assert first != signature(transfer(quic_connections, seed=5))


def test_actions_at_virtual_times_and_reactions_to_events(
    quic_connections: Connections,
) -> None:
    client, server = quic_connections()
    pair = QuicPair(
        client, server, up=LinkConfig(delay_s=0.02), down=LinkConfig(delay_s=0.02)
    )

    def echo(stamped: EndpointEvent) -> None:
        event = stamped.event
        if stamped.side == "server" and isinstance(event, StreamDataReceived):
            server.send_stream_data(
                event.stream_id, event.data.upper(), event.end_stream
            )

    pair.on_event(echo)
    pair.connect()
    pair.call_at(
        1.0,
        lambda: client.send_stream_data(
            client.get_next_available_stream_id(), b"ping", end_stream=True
        ),
    )
    assert pair.run_until(finished(pair, "client"), timeout=5)
    assert received(pair, "client") == b"PING"
    # Sent at 1.0 s; 20 ms each way.
    (reply,) = [e for e in pair.events if isinstance(e.event, StreamDataReceived)][1:]
    assert reply.time == pytest.approx(1.04)


def test_connection_survives_a_blackout(quic_connections: Connections) -> None:
    client, server = quic_connections()
    blackout = [
        ScheduleStep(1.0, {"blackhole": True}),
        ScheduleStep(3.0, {"blackhole": False}),
    ]
    link = LinkConfig(delay_s=0.04)
    pair = QuicPair(
        client, server, up=link, down=link, up_schedule=blackout, down_schedule=blackout
    )
    pair.connect()
    pair.call_at(
        1.5,
        lambda: client.send_stream_data(
            client.get_next_available_stream_id(), b"during", end_stream=True
        ),
    )
    assert pair.run_until(finished(pair), timeout=20)
    assert received(pair) == b"during"
    assert pair.now > 3.0
    assert pair.up.stats.dropped_blackhole > 0


class PingEndpoint:
    """A minimal sans-I/O endpoint: sends a ping every second, answers pings."""

    def __init__(self, pinging: bool) -> None:
        self._pinging = pinging
        self._next_ping = 0.0 if pinging else None
        self._outbox: list[bytes] = []
        self._events: list[tuple[str, bytes]] = []

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        if self._next_ping is not None and now >= self._next_ping:
            self._outbox.append(b"ping")
            self._next_ping += 1.0
        outbox, self._outbox = self._outbox, []
        return [(data, None) for data in outbox]

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        self._events.append(("received", data))
        if data == b"ping":
            self._outbox.append(b"pong")

    def get_timer(self) -> float | None:
        return self._next_ping

    def handle_timer(self, now: float) -> None:
        pass

    def next_event(self) -> Any:
        return self._events.pop(0) if self._events else None


def test_any_sans_io_endpoint_plugs_in() -> None:
    pair = QuicPair(
        PingEndpoint(pinging=True),
        PingEndpoint(pinging=False),
        up=LinkConfig(delay_s=0.1),
        down=LinkConfig(delay_s=0.1),
    )
    pair.run_for(3.5)
    assert [(e.time, e.side, e.event) for e in pair.events] == [
        (pytest.approx(t + d), side, ("received", data))
        for t in (0.0, 1.0, 2.0, 3.0)
        for d, side, data in ((0.1, "server", b"ping"), (0.2, "client", b"pong"))
    ]
    assert pair.now == pytest.approx(3.5)


class StuckEndpoint(PingEndpoint):
    def get_timer(self) -> float | None:
        return 0.5  # never moves, however often handled


def test_a_timer_that_never_moves_is_reported() -> None:
    pair = QuicPair(StuckEndpoint(pinging=False), PingEndpoint(pinging=False))
    with pytest.raises(RuntimeError, match="timer stays at 0.5"):
        pair.run_for(10.0)
