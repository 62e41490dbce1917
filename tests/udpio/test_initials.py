"""``udpio.initials`` reads a first flight and its token off raw bytes: real
Initials as aioquic's client builds them, and what only looks like one."""

import ssl
import time

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import encode_quic_retry

from udpio.initials import FIRST_FLIGHT_MIN_BYTES, carries_token, opens_connection

ADDRESS = ("127.0.0.1", 4433)


def client_first_flight() -> tuple[QuicConnection, bytes]:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=["test"], verify_mode=ssl.CERT_NONE
    )
    quic = QuicConnection(configuration=configuration)
    quic.connect(ADDRESS, now=time.monotonic())
    return quic, quic.datagrams_to_send(time.monotonic())[0][0]


def unknown(cid: bytes) -> bool:
    return False


def test_a_clients_first_flight_opens_a_connection_and_has_no_token():
    _, flight = client_first_flight()
    assert len(flight) >= FIRST_FLIGHT_MIN_BYTES
    assert opens_connection(flight, unknown)
    assert not carries_token(flight)
    # To an id the node knows, or where it cannot say, it opens nothing.
    assert not opens_connection(flight, lambda cid: cid == flight[6 : 6 + flight[5]])
    assert not opens_connection(flight, None)


def test_what_only_looks_like_a_first_flight_opens_nothing():
    _, flight = client_first_flight()
    assert not opens_connection(flight[: FIRST_FLIGHT_MIN_BYTES - 1], unknown)
    handshake = bytes([flight[0] | 0x20]) + flight[1:]  # type bits 0b10
    assert not opens_connection(handshake, unknown)
    other_version = flight[:1] + b"\x0a\x0a\x0a\x0a" + flight[5:]
    assert not opens_connection(other_version, unknown)
    version_2 = flight[:1] + (0x6B3343CF).to_bytes(4, "big") + flight[5:]
    assert not opens_connection(version_2, unknown)  # v2's Initial bits differ
    assert opens_connection(bytes([flight[0] | 0x10]) + version_2[1:], unknown)


def test_the_answer_to_a_retry_carries_its_token():
    # A server's Retry, and the client's Initial after it.
    quic, flight = client_first_flight()
    retry = encode_quic_retry(
        version=1,
        source_cid=b"retry-id",
        destination_cid=quic.host_cid,
        original_destination_cid=flight[6 : 6 + flight[5]],
        retry_token=b"a token of the server's",
    )
    quic.receive_datagram(retry, ADDRESS, now=time.monotonic())
    answer = quic.datagrams_to_send(time.monotonic())[0][0]
    assert answer[6 : 6 + answer[5]] == b"retry-id"
    assert opens_connection(answer, unknown)
    assert carries_token(answer)


def test_a_header_cut_short_carries_no_token():
    _, flight = client_first_flight()
    # Destination id, its length byte, the source id's length byte: cut
    # before the token's length, or at the source id's.
    at = 6 + flight[5]
    assert not carries_token(flight[:at])
    assert not carries_token(flight[: at + 1 + flight[at]])
    # A destination id longer than the datagram.
    assert not carries_token(flight[:5] + b"\xff" + flight[6:20])
