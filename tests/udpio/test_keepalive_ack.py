"""ACK-only keepalives (:func:`udpio.short_acks.owe_keepalive_ack`) on two
real aioquic connections wired in memory, 10 ms each way, on a virtual
clock: the server's idle timer restarts at each one and nothing comes back
for it; with a PING every second keepalive (the client core's plan for a
server with a long idle timeout) both ends stay up for minutes; and one that
arrives from a new address moves the server's path there, as a PING does."""

from __future__ import annotations

from aioquic.quic.connection import END_STATES

from client.quic_adapter import set_idle_timer
from client.transport import keepalive_plan
from udpio import short_acks, short_path
from udpio.short_acks import owe_keepalive_ack

from .test_ack_delay import ONE_WAY, connected
from .test_mtu_probe import CLIENT, pair

NEW_ADDRESS = ("10.0.0.9", 40000)


def short_paths(link):
    for conn in (link.client, link.server):
        assert short_path.install(conn) is not None
        assert short_acks.install(conn) is not None
    return link


def test_nothing_received_nothing_to_acknowledge(tmp_path):
    client, _ = pair(tmp_path)
    assert not owe_keepalive_ack(client, 0.0)  # not connected: a PING instead
    client.connect(("10.0.0.2", 4433), now=0.0)
    assert not owe_keepalive_ack(client, 0.0)  # no 1-RTT packet received yet
    assert client._spaces[short_acks._ONE_RTT].ack_at is None


def test_the_servers_idle_timer_restarts_and_nothing_answers(tmp_path):
    link = short_paths(connected(tmp_path, delayed=True))
    client, server = link.client, link.server
    idle = server._idle_timeout()
    assert idle == 60.0
    for at in (20.0, 40.0):
        link.run_until(at)
        packets = client._packet_number
        assert owe_keepalive_ack(client, at)
        link.run_until(at + 5.0)
        assert client._packet_number == packets + 1  # one ACK-only packet
        assert server._close_at == at + ONE_WAY + idle  # restarted on arrival
    # The server sent nothing after the handshake's end: an ACK frame asks
    # for no answer (a PING would each have drawn an ACK-only packet).
    assert link.since(2.0, "server") == []
    assert server._state not in END_STATES
    assert not client._spaces[short_acks._ONE_RTT].ack_at  # nothing still owed


def test_keepalives_on_the_plan_hold_both_ends_for_ten_minutes(tmp_path):
    """Every 20 s a keepalive, every second one a PING: the server answers
    the PINGs alone, and neither end's idle timer (the server's 60 s, the
    client's 120) runs out."""
    link = short_paths(connected(tmp_path, delayed=True))
    client, server = link.client, link.server
    plan = keepalive_plan(60.0, 5.0)
    assert (plan.interval, plan.idle_timer, plan.pings_every) == (20.0, 120.0, 2)
    set_idle_timer(client, plan.idle_timer)
    pings = 0
    at = 1.0
    for beat in range(1, 31):
        at += plan.interval
        link.run_until(at)
        if not plan.pings_at(beat) and owe_keepalive_ack(client, at):
            continue
        client.send_ping(beat)
        pings += 1
    link.run_until(at + 1.0)
    assert pings == 15
    assert len(link.since(2.0, "client")) == 30
    assert len(link.since(2.0, "server")) == pings  # one ACK per PING
    assert client._state not in END_STATES and server._state not in END_STATES
    assert client._loss.bytes_in_flight == 0


def test_without_the_pings_the_client_gives_up_after_its_timer(tmp_path):
    """What the PINGs are for: the client's idle timer (the plan's 120 s) is
    restarted only by what the server sends, so ACK-only keepalives alone
    keep the server's connection and lose the client's."""
    link = short_paths(connected(tmp_path, delayed=True))
    client, server = link.client, link.server
    set_idle_timer(client, keepalive_plan(60.0, 5.0).idle_timer)
    for at in (20.0, 40.0, 60.0, 80.0, 100.0, 120.0):
        link.run_until(at)
        assert client._state not in END_STATES
        owe_keepalive_ack(client, at)
    link.run_until(125.0)
    assert client._state in END_STATES  # 120 s after the handshake's last packet
    assert server._state not in END_STATES  # its timer restarted at 120.01


def test_one_from_a_new_address_moves_the_servers_path(tmp_path):
    """A NAT rebound the client's port: the ACK frame is not a probing frame
    (RFC 9000 9.1), so the server follows the client to its new address
    (and validates it), as it would for a PING."""
    link = short_paths(connected(tmp_path, delayed=True))
    client, server = link.client, link.server
    assert server._network_paths[0].addr == CLIENT
    assert owe_keepalive_ack(client, 20.0)
    [(data, _)] = client.datagrams_to_send(20.0)
    server.receive_datagram(data, NEW_ADDRESS, 20.01)
    assert server._network_paths[0].addr == NEW_ADDRESS
    assert [addr for _, addr in server.datagrams_to_send(20.01)] == [NEW_ADDRESS]
