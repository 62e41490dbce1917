"""A node flooded with first flights asks new connections to prove their
address with a QUIC Retry, and serves the ones that do (RFC 9000, 8.1.2)."""

import asyncio
import socket
import ssl
import time

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from client import Session
from codec import ALPN
from server.app import ServerApp
from server.cli import parse_args
from tests.conftest import PASSWORD, address, eventually, server_config

RETRY = 0xF0
"""The first byte of a QUIC version 1 Retry packet (a long header of type 3)."""


def half_open(host: str, port: int) -> QuicConnection:
    """A client connection whose first flight is ready and that is never
    driven further unless a test says so."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=[ALPN], verify_mode=ssl.CERT_NONE
    )
    quic = QuicConnection(configuration=configuration)
    quic.connect((host, port), now=time.monotonic())
    return quic


def first_datagram(quic: QuicConnection) -> bytes:
    return quic.datagrams_to_send(time.monotonic())[0][0]


def cid_to(datagram: bytes) -> bytes:
    """A long header's destination connection id."""
    return datagram[6 : 6 + datagram[5]]


def cid_from(datagram: bytes) -> bytes:
    """A long header's source connection id."""
    at = 6 + datagram[5]
    return datagram[at + 1 : at + 1 + datagram[at]]


def token_at(initial: bytes) -> int:
    """Where an Initial packet's token starts (after its two connection ids
    and the token's length, a variable-length integer)."""
    at = 6 + initial[5]
    at += 1 + initial[at]
    return at + (1 << (initial[at] >> 6))


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def reply_to(sock: socket.socket, quic: QuicConnection) -> bytes:
    """The first datagram ``sock`` reads that is addressed to ``quic``."""
    loop = asyncio.get_running_loop()
    while True:
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 5)
        if data[0] & 0x80 and cid_to(data) == quic.host_cid:
            return data


async def log_in(app: ServerApp, name: str) -> Session:
    session = Session(address(app))
    await session.connect()
    await session.register(name, PASSWORD)
    await session.login(name, PASSWORD)
    return session


async def test_a_node_that_always_asks_for_a_retry_serves_who_answers_it(tmp_path):
    app = ServerApp(server_config(tmp_path, max_unvalidated_handshakes=0))
    await app.start()
    try:
        session = await log_in(app, "alice")
        (conn,) = app.connections
        # The client's second Initial carried the token to the Retry's id:
        # the node's connection knows it, and told the client in its
        # transport parameters (aioquic's client checks them).
        assert conn.quic._retry_source_connection_id is not None
        stats = app.snapshot()
        assert stats["quic_retries_sent"] >= 1
        assert stats["quic_retry_tokens_refused"] == 0
        await session.close()
    finally:
        await app.shutdown(grace=0.0)


async def test_unfinished_handshakes_beyond_the_limit_draw_retries(tmp_path):
    # A long idle timeout: the two handshakes never answered stay unfinished
    # for the whole test, however slow the machine.
    app = ServerApp(
        server_config(tmp_path, max_unvalidated_handshakes=2, idle_timeout=30.0)
    )
    await app.start()
    host, port = app.address
    sock, elsewhere = udp_socket(), udp_socket()
    try:
        # Two first flights never followed up: two handshakes begun, and
        # unfinished.
        for _ in range(2):
            flight = first_datagram(half_open(host, port))
            sock.sendto(flight, (host, port))
            await eventually(
                lambda f=flight: app._server.knows_connection_id(cid_to(f))
            )

        # The third gets a Retry, and the node keeps nothing for it.
        third = half_open(host, port)
        flight = first_datagram(third)
        sock.sendto(flight, (host, port))
        retry = await reply_to(sock, third)
        assert retry[0] & 0xF0 == RETRY
        assert cid_from(retry) != cid_to(flight)
        assert not app._server.knows_connection_id(cid_to(flight))
        assert app.snapshot()["quic_retries_sent"] == 1

        # Its answer, with the token, from another address: refused
        # (aioquic closes with INVALID_TOKEN), and nothing is kept.
        third.receive_datagram(retry, (host, port), now=time.monotonic())
        answer = first_datagram(third)
        assert cid_to(answer) == cid_from(retry)
        elsewhere.sendto(answer, (host, port))
        close = await reply_to(elsewhere, third)
        assert close[0] & 0xB0 == 0x80  # an Initial packet back: the close
        assert app.snapshot()["quic_retry_tokens_refused"] == 1
        assert not app._server.knows_connection_id(cid_from(retry))

        # A forged token (one byte of it changed), from the right address:
        # refused the same way.
        forged = bytearray(answer)
        forged[token_at(answer) + 16] ^= 0xFF
        sock.sendto(bytes(forged), (host, port))
        await reply_to(sock, third)
        assert app.snapshot()["quic_retry_tokens_refused"] == 2
        assert not app._server.knows_connection_id(cid_from(retry))

        # From its own address the answer as sent opens the connection.
        sock.sendto(answer, (host, port))
        await eventually(lambda: app._server.knows_connection_id(cid_from(retry)))
        assert app.snapshot()["quic_retry_tokens_refused"] == 2

        # A real client logs in through a Retry, and is served.
        session = await log_in(app, "alice")
        assert app.snapshot()["quic_retries_sent"] >= 2
        await session.close()
    finally:
        sock.close()
        elsewhere.close()
        await app.shutdown(grace=0.0)


async def test_finished_handshakes_do_not_count(tmp_path):
    app = ServerApp(server_config(tmp_path, max_unvalidated_handshakes=1))
    await app.start()
    try:
        sessions = [await log_in(app, name) for name in ("alice", "bob", "carol")]
        assert app.snapshot()["quic_retries_sent"] == 0
        for session in sessions:
            await session.close()
    finally:
        await app.shutdown(grace=0.0)


async def test_without_a_limit_the_node_never_asks(tmp_path):
    app = ServerApp(server_config(tmp_path, max_unvalidated_handshakes=None))
    await app.start()
    host, port = app.address
    sock = udp_socket()
    try:
        flights = [first_datagram(half_open(host, port)) for _ in range(3)]
        for flight in flights:
            sock.sendto(flight, (host, port))
        for flight in flights:
            await eventually(
                lambda f=flight: app._server.knows_connection_id(cid_to(f))
            )
        assert app.snapshot()["quic_retries_sent"] == 0
    finally:
        sock.close()
        await app.shutdown(grace=0.0)


def test_the_command_line_option(capsys):
    assert parse_args([]).max_unvalidated_handshakes == 128
    assert (
        parse_args(["--max-unvalidated-handshakes", "0"]).max_unvalidated_handshakes
        == 0
    )
    assert (
        parse_args(["--max-unvalidated-handshakes", "-1"]).max_unvalidated_handshakes
        is None
    )
    with pytest.raises(SystemExit):
        parse_args(["--max-unvalidated-handshakes", "-2"])
    assert "--max-unvalidated-handshakes must be" in capsys.readouterr().err
