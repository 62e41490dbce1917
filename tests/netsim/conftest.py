"""Fixtures for the netsim tests: a QUIC certificate and a UDP echo server."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="session")
def certificate() -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    """A self-signed certificate for "localhost".

    Ed25519 rather than ECDSA: its signatures always take 64 bytes, so the server's
    handshake packets have the same sizes on every run, and a seeded run through a
    lossy link is reproducible packet for packet. (An ECDSA signature's encoding
    varies by a byte or two from one signature to the next.)
    """
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
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, None)
    )
    return cert, key


@pytest.fixture
def quic_connections(
    certificate: tuple[x509.Certificate, ed25519.Ed25519PrivateKey],
) -> Callable[[], tuple[QuicConnection, QuicConnection]]:
    """Make a fresh (client, server) pair of aioquic connections."""

    def make() -> tuple[QuicConnection, QuicConnection]:
        client_configuration = QuicConfiguration(
            is_client=True,
            alpn_protocols=["netsim-test"],
            server_name="localhost",
            verify_mode=ssl.CERT_NONE,
        )
        server_configuration = QuicConfiguration(
            is_client=False, alpn_protocols=["netsim-test"]
        )
        server_configuration.certificate, server_configuration.private_key = certificate
        client = QuicConnection(configuration=client_configuration)
        server = QuicConnection(
            configuration=server_configuration,
            original_destination_connection_id=client.original_destination_connection_id,
        )
        return client, server

    return make


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, int]]:
    """A UDP echo server on loopback; yields its (host, port)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        _Echo, local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")[:2]
    transport.close()
