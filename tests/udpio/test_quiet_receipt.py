"""Quiet receipts (:mod:`udpio.short_receive`): two real aioquic connections
wired in memory on a virtual clock, the server receiving on the short path
and forgetting its ACK-only packets as the node does. An ACK-only keepalive
that acknowledges nothing new is counted quiet and leaves the server nothing
to send, no event and a timer no earlier than before; whatever else a packet
brings (a PING, an acknowledgement of something in flight, a new address)
is not quiet."""

from __future__ import annotations

import pytest
from aioquic import tls
from aioquic.quic.connection import QuicConnection

from server.quic_adapter import forget_unacknowledged_acks
from udpio import ack_delay, short_acks, short_path, short_receive
from udpio.short_acks import owe_keepalive_ack
from udpio.short_receive import ShortReceive

from .test_ack_delay import Link
from .test_mtu_probe import CLIENT, SERVER, pair

NEW_ADDRESS = ("10.0.0.9", 40000)


def settled(tmp_path) -> Link:
    """A handshake on the link, both ends on the node's short paths (the
    server receiving on one), everything acknowledged."""
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    link = Link(client, server)
    link.run_until(1.0)
    assert short_receive.install(server) is not None
    for conn in (client, server):
        assert ack_delay.install(conn) is not None
        assert short_path.install(conn) is not None
        assert short_acks.install(conn) is not None
    link.run_until(2.0)
    forget_unacknowledged_acks(server)
    for conn in (client, server):
        while conn.next_event() is not None:
            pass  # the handshake's
    return link


def keepalive(client: QuicConnection, at: float) -> bytes:
    """The client's ACK-only keepalive, as the client core builds it."""
    assert owe_keepalive_ack(client, at)
    [(data, _)] = client.datagrams_to_send(at)
    return data


def receive(server: QuicConnection, data: bytes, addr, at: float) -> bool:
    """Hand ``data`` to the server; whether the receipt was quiet."""
    before = ShortReceive.quiet
    server.receive_datagram(data, addr, at)
    return ShortReceive.quiet == before + 1


def test_an_ack_only_keepalive_is_quiet_and_owes_nothing(tmp_path):
    link = settled(tmp_path)
    client, server = link.client, link.server
    for at in (20.0, 40.0, 60.0):
        link.run_until(at)
        timer = server.get_timer()
        received = ShortReceive.received
        assert receive(server, keepalive(client, at), CLIENT, at + 0.01)
        assert ShortReceive.received == received + 1  # on the short path
        assert server._close_at == at + 0.01 + server._idle_timeout()
        # What the node then skips would have found nothing to do: no event,
        # nothing to send, and a timer that moved later (the idle timer's),
        # so the deadline armed before comes early at worst.
        assert server.next_event() is None
        assert server.datagrams_to_send(at + 0.01) == []
        assert server.get_timer() >= timer


def test_a_ping_is_not_quiet(tmp_path):
    link = settled(tmp_path)
    client, server = link.client, link.server
    client.send_ping(1)
    [(data, _)] = client.datagrams_to_send(20.0)
    assert not receive(server, data, CLIENT, 20.01)
    assert [len(d) for d, _ in server.datagrams_to_send(20.01)]  # its ACK


def test_an_ack_of_something_in_flight_is_not_quiet(tmp_path):
    """The server sent stream data (an event pushed to an idle client): the
    client's ACK of it ends the loss timer and moves the controller, which
    the transmit after it must see (no event tells of it)."""
    link = settled(tmp_path)
    client, server = link.client, link.server
    space = server._spaces[tls.Epoch.ONE_RTT]
    server.send_stream_data(server.get_next_available_stream_id(), b"presence")
    [(push, _)] = server.datagrams_to_send(20.0)
    assert space.ack_eliciting_in_flight == 1
    client.receive_datagram(push, SERVER, 20.01)
    assert not receive(server, keepalive(client, 20.01), CLIENT, 20.02)
    assert space.ack_eliciting_in_flight == 0
    assert server.next_event() is None


def test_an_ack_of_a_kept_ack_only_packet_is_not_quiet(tmp_path):
    """A record of the server's own ACK-only packet (kept while something
    ack-eliciting was in flight) leaves when the client acknowledges it: the
    receipt changed the server's records."""
    link = settled(tmp_path)
    client, server = link.client, link.server
    client.send_ping(1)
    [(ping, _)] = client.datagrams_to_send(20.0)
    server.receive_datagram(ping, CLIENT, 20.01)
    [(answer, _)] = server.datagrams_to_send(20.01)  # its ACK, recorded
    client.receive_datagram(answer, SERVER, 20.02)
    assert not receive(server, keepalive(client, 20.02), CLIENT, 20.03)


@pytest.mark.parametrize("addr", [NEW_ADDRESS, CLIENT], ids=["moved", "same"])
def test_one_from_a_new_address_is_not_quiet(tmp_path, addr):
    """A NAT rebound the client's port: the server moves the connection and
    must validate the new path, which needs a transmit."""
    link = settled(tmp_path)
    client, server = link.client, link.server
    quiet = receive(server, keepalive(client, 20.0), addr, 20.01)
    assert quiet == (addr == CLIENT)
    assert bool(server.datagrams_to_send(20.01)) == (addr != CLIENT)
