"""The short receive path (:mod:`udpio.short_receive`) against aioquic's own
``receive_datagram``: two pairs of real aioquic connections on a virtual
clock run the same transfers (test_short_path's twins), one pair receiving on
the short path; the state after every datagram received (packet numbers, ACK
ranges and due time, idle timer, spin bit, flow control, loss recovery,
events, a close's error) and every packet sent must be the same. Malformed
and unexpected packets, encrypted with each pair's own keys, must end both
connections the same way."""

from __future__ import annotations

import os

import pytest
from aioquic import tls
from aioquic.quic.packet import QuicErrorCode

from udpio import ack_delay, short_receive
from udpio.short_path import short_header

from .test_mtu_probe import CLIENT, SERVER, Wire, pair
from .test_short_path import MTU, Twin, receipt_state, run_twins

RECEIVE_ONLY = {"short": False, "receive": True}
BOTH = {"short": True, "receive": True}


@pytest.mark.parametrize("variant", [RECEIVE_ONLY, BOTH], ids=["receive", "both"])
def test_an_upload_a_download_and_datagrams_match_aioquic(tmp_path, variant):
    up, down = os.urandom(800_000), os.urandom(600_000)

    def script(twin, index):
        if index == 0:
            twin.client.send_stream_data(0, b"give me the file", end_stream=True)
        if index == 1:
            twin.client.send_stream_data(4, up, end_stream=True)
        if index == 5:
            stream_id = twin.server.get_next_available_stream_id()
            twin.server.send_stream_data(stream_id, down, end_stream=True)
        if index % 3 == 0 and index < 300:  # media beside the streams
            twin.client.send_datagram_frame(b"media %d" % index)
            twin.server.send_datagram_frame(b"m" * (index % 1100))

    expected = {
        ("server", 0): b"give me the file",
        ("server", 4): up,
        ("client", 1): down,
    }
    before = short_receive.ShortReceive.received
    run_twins(tmp_path, script, expected, variant=variant)
    taken = short_receive.ShortReceive.received - before
    # nearly every packet after the handshake on the short path
    assert taken > 0.9 * (len(up) + len(down)) / 1450


@pytest.mark.parametrize("every", [7, 23])
def test_losses_reordering_of_ranges_and_retransmissions(tmp_path, every):
    up = os.urandom(1_000_000)

    def script(twin, index):
        if index == 0:
            twin.client.send_stream_data(0, up, end_stream=True)

    before = short_receive.ShortReceive.received
    run_twins(
        tmp_path,
        script,
        {("server", 0): up},
        lambda client, n: n % every == 0,
        variant=RECEIVE_ONLY,
    )
    assert short_receive.ShortReceive.received - before > 0.5 * len(up) / 1450


def test_small_requests_a_key_update_and_pings(tmp_path):
    big = os.urandom(300_000)

    def script(twin, index):
        client = twin.client
        if index < 40 and index % 4 == 0:
            stream_id = client.get_next_available_stream_id()
            client.send_stream_data(stream_id, b"request %d" % index)
            client.send_stream_data(stream_id, b"", end_stream=True)
        if index == 50:
            client.send_stream_data(2, big)
        if index in (60, 200):
            client.request_key_update()
        if index == 120:
            twin.server.request_key_update()
        if index % 25 == 0:
            twin.server.send_ping(index)
        if index == 300:
            client.send_stream_data(2, b"", end_stream=True)

    expected = {("server", 4 * i): b"request %d" % (4 * i) for i in range(10)}
    expected["server", 2] = big
    run_twins(tmp_path, script, expected, variant=BOTH)


def _crafted(sender, plaintext: bytes, first_bits: int = 0) -> bytes:
    """A 1-RTT packet from ``sender`` with this plaintext, in its keys."""
    crypto = sender._cryptos[tls.Epoch.ONE_RTT]
    number = sender._packet_number
    sender._packet_number += 1
    header = bytearray(short_header(sender, crypto, number))
    header[0] |= first_bits
    return crypto.encrypt_packet(bytes(header), plaintext, number)


BAD_PACKETS = {
    "truncated stream frame": (b"\x0a\x40", 0),
    "truncated frame type": (b"\x01\x40", 0),
    "unknown frame type": (b"\x1f\x00", 0),
    "frame not for this epoch": (b"\x1e\x00", 0),  # HANDSHAKE_DONE to a server
    "over the stream's limit": (b"\x0e\x00\x80\x7f\xff\xff\x01x", 0),
    "over the connection's limit on a new stream": (
        b"\x0e\x08\x80\x7f\xff\xff\x01x",
        0,
    ),
    "stream offset and length past 2^62": (
        b"\x0e\x00\xff\xff\xff\xff\xff\xff\xff\xff\x01x",
        0,
    ),
    "data past the final size": (b"\x0d\x00\x20\x01x", 0),
    "datagram frame length past the packet": (b"\x31\x44\x00ab", 0),
    "reserved bits": (b"\x01\x01", 0x08),
    "padding alone": (b"\x00\x00\x00", 0),
    "connection close": (b"\x1c\x0a\x00\x03bye", 0),
}


@pytest.mark.parametrize("name", sorted(BAD_PACKETS))
def test_malformed_and_unexpected_packets_end_both_alike(tmp_path, name):
    plaintext, bits = BAD_PACKETS[name]
    for path in (tmp_path / "aioquic", tmp_path / "short"):
        path.mkdir()
    twins = [
        Twin(tmp_path / "aioquic", short=False),
        Twin(tmp_path / "short", short=False, receive=True),
    ]
    states = []
    for twin in twins:
        # stream 0 open and finished at 16 bytes on the server first
        twin.client.send_stream_data(0, b"0123456789abcdef", end_stream=True)
        for _ in range(3):
            twin.step(lambda client, n: False)
        before = short_receive.ShortReceive.received
        packet = _crafted(twin.client, plaintext, bits)
        twin.server.receive_datagram(packet, CLIENT, twin.now)
        states.append(
            (receipt_state(twin.server), short_receive.ShortReceive.received - before)
        )
    (theirs, _), (ours, taken) = states
    assert ours == theirs
    assert taken == 1


def test_the_final_size_and_a_duplicate_on_the_short_path(tmp_path):
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    Wire(client, server, MTU).run(1.0)
    short_receive.install(server)
    ack_delay.install(server)
    while server.next_event() is not None:
        pass
    client.send_stream_data(0, b"0123456789", end_stream=True)
    (packet, _), *_ = client.datagrams_to_send(2.0)
    before = short_receive.ShortReceive.received
    server.receive_datagram(packet, CLIENT, 2.0)
    ack_at = server._spaces[tls.Epoch.ONE_RTT].ack_at
    server.receive_datagram(packet, CLIENT, 2.1)  # a duplicate: dropped
    assert short_receive.ShortReceive.received == before + 2
    assert server.next_event().data == b"0123456789"
    assert server.next_event() is None
    assert server._spaces[tls.Epoch.ONE_RTT].ack_at == ack_at
    server.receive_datagram(_crafted(client, b"\x0d\x00\x05\x06xxxxxx"), CLIENT, 2.2)
    assert server._close_event.error_code == QuicErrorCode.FINAL_SIZE_ERROR


def test_what_is_left_to_aioquic(tmp_path):
    client, server = pair(tmp_path)
    assert short_receive.install(object()) is None  # type: ignore[arg-type]
    client.connect(SERVER, now=0.0)
    Wire(client, server, MTU).run(1.0)
    assert short_receive.install(server) is server
    assert short_receive.install(server) is server  # idempotent
    before = short_receive.ShortReceive.received
    # from another address: aioquic's method (which starts validating it)
    client.send_stream_data(0, b"from elsewhere")
    (packet, _), *_ = client.datagrams_to_send(2.0)
    server.receive_datagram(packet, ("10.9.9.9", 9999), 2.0)
    assert short_receive.ShortReceive.received == before
    assert len(server._network_paths) == 2
    # a wrapper already on the connection would hide the short path
    other_client, other = pair(tmp_path)
    other.receive_datagram = other.receive_datagram
    with pytest.raises(ValueError):
        short_receive.install(other)
    assert not isinstance(other_client, short_receive.ShortReceive)
