"""When :mod:`udpio.ack_delay` has a connection acknowledge, on two real aioquic
connections wired in memory with 10 ms each way, on a virtual clock: a lone
request's ACK rides on the reply (one datagram back instead of two), or
leaves after 20 ms when nothing is sent; a second packet, a DATAGRAM frame
(media) and a bulk transfer are acknowledged within 1 ms as aioquic does."""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import Any

import pytest
from aioquic.quic.connection import QuicConnection

from server import quic_fastpath
from udpio import ack_delay
from udpio.mtu_probe import max_datagram_size

from .test_mtu_probe import CLIENT, SERVER, pair

ONE_WAY = 0.010


class Link:
    """Carries every datagram both ways after :data:`ONE_WAY` seconds and runs
    both connections' timers; records who sent what when."""

    def __init__(self, client: QuicConnection, server: QuicConnection) -> None:
        self.client, self.server = client, server
        self.now = 0.0
        self._flying: list[tuple[float, int, QuicConnection, bytes, Any]] = []
        self._order = itertools.count()
        self.sent: list[tuple[float, str, int]] = []
        self._heard = False  # the server has no path before the first datagram

    def flush(self, conn: QuicConnection) -> None:
        side, peer, source = (
            ("client", self.server, CLIENT)
            if conn is self.client
            else ("server", self.client, SERVER)
        )
        if conn is self.server and not self._heard:
            return
        for data, _ in conn.datagrams_to_send(self.now):
            self.sent.append((self.now, side, len(data)))
            heapq.heappush(
                self._flying,
                (self.now + ONE_WAY, next(self._order), peer, data, source),
            )

    def run_until(self, end: float) -> None:
        conns = (self.client, self.server)
        for _ in range(100_000):
            for conn in conns:
                self.flush(conn)
            times = [t for conn in conns if (t := conn.get_timer()) is not None]
            if self._flying:
                times.append(self._flying[0][0])
            due = min(times, default=end)
            if due > end:
                self.now = end
                return
            self.now = max(self.now, due)
            while self._flying and self._flying[0][0] <= self.now:
                _, _, receiver, data, source = heapq.heappop(self._flying)
                self._heard = True
                receiver.receive_datagram(data, source, self.now)
            for conn in conns:
                timer = conn.get_timer()
                if timer is not None and timer <= self.now:
                    conn.handle_timer(self.now)
        raise AssertionError("the link never settled")

    def since(self, start: float, side: str) -> list[float]:
        """When ``side`` sent each datagram from ``start`` on (seconds after it)."""
        return [
            round(t - start, 6) for t, s, _ in self.sent if s == side and t >= start
        ]


def connected(tmp_path: Path, delayed: bool, fast_path: bool = False) -> Link:
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    link = Link(client, server)
    link.run_until(1.0)  # the handshake and what follows it, all acknowledged
    if delayed:
        for conn in (client, server):
            assert ack_delay.install(conn) is not None
    if fast_path:
        assert quic_fastpath.install(server) is not None
    return link


@pytest.mark.parametrize(
    ("delayed", "fast_path"), [(False, False), (True, False), (True, True)]
)
def test_the_reply_carries_the_requests_ack(tmp_path, delayed, fast_path):
    """A request answered 5 ms after it arrived: aioquic alone sends an ACK
    1 ms after the request arrived and the reply in a packet of its own;
    delayed, the reply is the one datagram back, and the client's ACK of it
    leaves 20 ms later (nothing else to carry it). With the SFU's short path
    installed over the policy, the same."""
    link = connected(tmp_path, delayed, fast_path)
    client, server = link.client, link.server
    stream = client.get_next_available_stream_id()
    client.send_stream_data(stream, b"request")
    link.run_until(1.015)  # arrived at 1.010
    server.send_stream_data(stream, b"reply")
    link.run_until(1.2)
    if delayed:
        assert link.since(1.0, "server") == [0.015]
        assert link.since(1.0, "client") == [0.0, 0.045]  # reply arrived at 1.025
    else:
        assert link.since(1.0, "server") == [0.011, 0.015]
        assert link.since(1.0, "client") == [0.0, 0.026]
    # Both ends saw their data acknowledged: nothing left in flight.
    assert client._loss.bytes_in_flight == 0
    assert server._loss.bytes_in_flight == 0


def test_a_lone_packet_is_acknowledged_within_the_delay(tmp_path):
    link = connected(tmp_path, delayed=True)
    link.client.send_stream_data(link.client.get_next_available_stream_id(), b"x")
    link.run_until(1.2)
    assert link.since(1.0, "server") == [0.010 + ack_delay.ACK_DELAY]
    assert link.client._loss.bytes_in_flight == 0


@pytest.mark.parametrize("delayed", [False, True])
def test_a_ping_is_acknowledged_in_the_transmit_that_follows_it(tmp_path, delayed):
    """Nothing will answer a keepalive: delayed, its ACK leaves when it
    arrived (no timer); aioquic alone, 1 ms later."""
    link = connected(tmp_path, delayed)
    link.client.send_ping(7)
    link.run_until(1.2)
    assert link.since(1.0, "server") == ([0.010] if delayed else [0.011])
    assert link.client._loss.bytes_in_flight == 0


def test_a_second_packet_is_acknowledged_at_once(tmp_path):
    """Two packets 5 ms apart: acknowledged 1 ms after the second arrived."""
    link = connected(tmp_path, delayed=True)
    client = link.client
    stream = client.get_next_available_stream_id()
    client.send_stream_data(stream, b"first")
    link.run_until(1.005)
    client.send_stream_data(stream, b"second")
    link.run_until(1.2)
    assert link.since(1.0, "server") == [0.016]


@pytest.mark.parametrize("delayed", [False, True])
def test_media_is_acknowledged_as_before(tmp_path, delayed):
    """A DATAGRAM frame, alone or after a lone stream packet that still waits
    for its ACK: 1 ms after it arrived, with or without the policy."""
    link = connected(tmp_path, delayed)
    client = link.client
    client.send_datagram_frame(b"media")
    link.run_until(1.1)
    client.send_stream_data(client.get_next_available_stream_id(), b"chat")
    link.run_until(1.105)
    client.send_datagram_frame(b"media")
    link.run_until(1.3)
    acks = link.since(1.0, "server")
    assert acks == ([0.011, 0.111, 0.116] if not delayed else [0.011, 0.116])


def test_a_bulk_transfer_is_acknowledged_as_often_as_before(tmp_path):
    """64 KiB written at once leave back to back: the first ACK comes 1 ms
    after the first packet arrived, with or without the policy."""
    counts = []
    for delayed in (False, True):
        link = connected(tmp_path / str(delayed), delayed)
        client = link.client
        client.send_stream_data(client.get_next_available_stream_id(), bytes(65536))
        link.run_until(1.5)
        assert link.since(1.0, "server")[0] == 0.011
        assert client._loss.bytes_in_flight == 0
        counts.append(len(link.since(1.0, "server")))
    assert counts[1] <= counts[0]


def test_install_is_idempotent_and_leaves_other_objects_alone(tmp_path):
    link = connected(tmp_path, delayed=True)
    delayed = type(link.client)
    assert isinstance(link.client, ack_delay.DelayedAcks)
    assert ack_delay.install(link.client) is link.client
    assert type(link.client) is delayed
    assert "receive_datagram" not in link.client.__dict__  # the class's method
    assert ack_delay.install(object()) is None  # type: ignore[arg-type]


def test_install_after_a_wrapper_is_refused_and_changes_nothing(tmp_path):
    """The SFU's short path wraps the connection's methods as instance
    attributes; installed over it, the policy would be bypassed: refused."""
    link = connected(tmp_path, delayed=False, fast_path=True)
    server = link.server
    before = type(server)
    with pytest.raises(ValueError, match="before wrapping"):
        ack_delay.install(server)
    assert type(server) is before and server._ack_delay != ack_delay.ACK_DELAY
    assert max_datagram_size(link.client) == 1200
