"""The short DATAGRAM path of :mod:`server.quic_fastpath` on two real aioquic
connections wired in memory on a virtual clock: its packets are read by an
unmodified aioquic peer, carry the plaintext aioquic's own builder makes, and
are accounted for by loss detection and congestion control as aioquic's are;
anything but DATAGRAM frames goes through aioquic's method."""

from __future__ import annotations

import sys
from pathlib import Path

from aioquic import tls
from aioquic.quic.events import DatagramFrameReceived

from server import quic_fastpath

sys.path.insert(0, str(Path(__file__).parent.parent / "udpio"))
from test_mtu_probe import CLIENT, SERVER, Wire, pair  # noqa: E402

PAYLOAD = b"m" * 1150


def connected(tmp_path: Path):
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, 1500)
    wire.run(1.0)
    return client, server, wire


def received(client) -> list[bytes]:
    out = []
    while (event := client.next_event()) is not None:
        if isinstance(event, DatagramFrameReceived):
            out.append(event.data)
    return out


class Recorder:
    """Records what a crypto pair is asked to encrypt."""

    def __init__(self, pair) -> None:
        self.pair, self.calls = pair, []
        self.original = pair.encrypt_packet

    def __enter__(self):
        def record(header, payload, number):
            self.calls.append((header, payload, number))
            return self.original(header, payload, number)

        self.pair.encrypt_packet = record
        return self

    def __exit__(self, *exc) -> None:
        del self.pair.encrypt_packet


def send(server, client, now, datagrams):
    for data in datagrams:
        server.send_datagram_frame(data)
    out = server.datagrams_to_send(now)
    for data, _ in out:
        client.receive_datagram(data, SERVER, now)
    return out


def test_fast_packets_are_read_by_aioquic_and_match_its_builder(tmp_path):
    client, server, wire = connected(tmp_path)
    received(client)
    sender = quic_fastpath.install(server)
    crypto = server._cryptos[tls.Epoch.ONE_RTT]
    now = wire.now
    small = [b"a" * 300, b"b" * 400, b"c" * 20]  # three frames in one packet
    with Recorder(crypto) as aioquic_made:
        send(server, client, now, [PAYLOAD])  # aioquic's method: makes it clean
        send(server, client, now, small)
    assert sender.fast_packets == 0 or len(aioquic_made.calls) == 2
    fast_before = sender.fast_packets
    with Recorder(crypto) as fast_made:
        send(server, client, now, [PAYLOAD])
        send(server, client, now, small)
    assert sender.fast_packets == fast_before + 2
    assert received(client) == [PAYLOAD, *small, PAYLOAD, *small]
    for (h_old, p_old, n_old), (h_new, p_new, n_new) in zip(
        aioquic_made.calls, fast_made.calls, strict=True
    ):
        assert p_new == p_old
        assert h_new[:-2] == h_old[:-2]  # first byte (spin bit, key phase), cid
        assert h_new[-2:] == (n_new & 0xFFFF).to_bytes(2, "big")
        assert n_new == n_old + 2


def test_accounting_equals_aioquics(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    space = server._spaces[tls.Epoch.ONE_RTT]
    now = wire.now
    send(server, client, now, [PAYLOAD])
    in_flight = server._loss.bytes_in_flight
    number = server._packet_number
    out = send(server, client, now, [PAYLOAD, PAYLOAD])
    assert sender.fast_packets == 2
    assert server._packet_number == number + 2
    assert server._loss.bytes_in_flight == in_flight + sum(len(d) for d, _ in out)
    for packet_number in (number, number + 1):
        record = space.sent_packets[packet_number]
        assert record.in_flight and record.is_ack_eliciting
        assert record.sent_time == now and record.sent_bytes == len(out[0][0])
    # the client's ACK reaches the server and clears them
    for data, _ in client.datagrams_to_send(now + 0.03):
        server.receive_datagram(data, CLIENT, now + 0.03)
    assert number not in space.sent_packets and number + 1 not in space.sent_packets
    assert server._loss.bytes_in_flight == 0


def test_anything_else_goes_through_aioquic(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    # a received packet makes an ACK or a limit due: aioquic's method decides
    stream_id = client.get_next_available_stream_id()
    client.send_stream_data(stream_id, b"hello")
    for data, _ in client.datagrams_to_send(now):
        server.receive_datagram(data, CLIENT, now)
    send(server, client, now + 0.03, [PAYLOAD])
    assert sender.fast_packets == 0
    # a stream write of its own, and a PING, too
    server.send_stream_data(1 if stream_id == 0 else 3, b"x")
    send(server, client, now + 0.04, [PAYLOAD])
    server.send_ping(7)
    send(server, client, now + 0.05, [PAYLOAD])
    assert sender.fast_packets == 0
    send(server, client, now + 0.06, [PAYLOAD])
    assert sender.fast_packets == 1


def test_congestion_window_and_key_update(tmp_path):
    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    window = server._loss.congestion_window - server._loss.bytes_in_flight
    out = send(server, client, now, [PAYLOAD] * 200)
    assert sender.fast_packets == len(out) > 0
    assert sum(len(d) for d, _ in out) <= window
    assert server._datagrams_pending  # the rest waits for room
    assert len(received(client)) == 1 + len(out)
    server.request_key_update()
    phase = server._cryptos[tls.Epoch.ONE_RTT].key_phase
    wire.now = now + 0.05
    wire.run(0.5)
    assert received(client) == [PAYLOAD] * (200 - len(out))
    assert client._cryptos[tls.Epoch.ONE_RTT].key_phase == phase


def test_a_path_mtu_probe_through_the_short_path(tmp_path):
    """udpio's probe raises the packet size for one transmit and finds its
    packet among the sent records by size: the short path builds it at
    exactly that size, and its acknowledgement is reported."""
    from codec.pmtu import PADDING_MARK
    from udpio import mtu_probe

    client, server, wire = connected(tmp_path)
    sender = quic_fastpath.install(server)
    now = wire.now
    send(server, client, now, [PAYLOAD])
    wire.sizes.clear()
    verdicts: list[bool] = []
    sent = mtu_probe.send_mtu_probe(
        server, 1452, PADDING_MARK, lambda: wire.send(server), verdicts.append
    )
    assert sent and wire.sizes == [1452] and sender.fast_packets == 1
    wire.run(2.0)
    assert verdicts == [True]
