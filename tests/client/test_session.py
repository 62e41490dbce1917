"""The client core against a real server: pinning, CA trust, reconnect."""

import asyncio
import datetime
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from client import (
    CertificateMismatch,
    ConnectionFailed,
    Home,
    NotConnected,
    PinStore,
    Reconnected,
    Session,
    parse_address,
)
from client.events import Disconnected
from server import ServerApp
from tests.conftest import PASSWORD, server_config


def test_parse_address():
    assert parse_address("example.org:5000") == ("example.org", 5000)
    assert parse_address("example.org") == ("example.org", 4433)
    assert parse_address("[::1]:7000") == ("::1", 7000)
    for bad in ("host:0", "host:99999", "host:abc", ":123"):
        with pytest.raises(ValueError):
            parse_address(bad)


async def test_pin_on_first_use_and_refuse_a_changed_certificate(tmp_path):
    pins = PinStore(tmp_path / "home" / "known_hosts.json")
    app = ServerApp(server_config(tmp_path / "a"))
    host, port = await app.start()
    first = Session(f"{host}:{port}", pins=pins)
    await first.connect()
    assert first.newly_pinned
    await first.close()
    await app.shutdown(grace=0)

    # Same address, new certificate (another data folder): must be refused.
    impostor = ServerApp(server_config(tmp_path / "b", port=port))
    await impostor.start()
    try:
        reloaded = PinStore(tmp_path / "home" / "known_hosts.json")
        session = Session(f"{host}:{port}", pins=reloaded)
        with pytest.raises(CertificateMismatch) as info:
            await session.connect()
        text = str(info.value)
        assert app.fingerprint in text and impostor.fingerprint in text
        assert "CHANGED" in text
        assert not session.connected
    finally:
        await impostor.shutdown(grace=0)


def _ca_and_server_cert(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srv")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (certs / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file


async def test_ca_file_is_trusted_instead_of_pinning(tmp_path):
    ca_file = _ca_and_server_cert(tmp_path)
    app = ServerApp(server_config(tmp_path))
    _, port = await app.start()
    try:
        pins = PinStore(None)
        good = Session(f"localhost:{port}", pins=pins, ca_file=ca_file)
        await good.connect()
        assert pins.get(f"localhost:{port}") is None
        await good.close()
        (tmp_path / "x").mkdir()
        bad_ca = _ca_and_server_cert(tmp_path / "x")
        refused = Session(f"localhost:{port}", ca_file=bad_ca)
        with pytest.raises(ConnectionFailed):
            await refused.connect(timeout=3)
    finally:
        await app.shutdown(grace=0)


async def test_reconnects_and_resumes_after_server_restart(tmp_path):
    config = server_config(tmp_path)
    app = ServerApp(config)
    host, port = await app.start()
    session = Session(f"{host}:{port}", max_backoff=0.5)
    await session.connect()
    await session.register("phoenix", PASSWORD)
    await session.login("phoenix", PASSWORD)
    await app.shutdown(grace=0.05)
    disconnected = None
    while disconnected is None:
        event = await session.next_event(5)
        if isinstance(event, Disconnected):
            disconnected = event
    assert disconnected.will_retry
    with pytest.raises(NotConnected):
        await session.wait_ready(0.05)

    config.port = port
    again = ServerApp(config)
    await again.start()
    try:
        event = await session.next_event(15)
        while not isinstance(event, Reconnected):
            event = await session.next_event(15)
        assert (await session.get_profile()).username == "phoenix"
    finally:
        await session.close()
        await again.shutdown(grace=0)


async def test_home_keeps_pins_and_session_private(tmp_path):
    home = Home(tmp_path / "h")
    assert (tmp_path / "h").stat().st_mode & 0o777 == 0o700
    from client.home import SavedSession

    home.save_session(SavedSession("s:1", "u", b"t" * 32, 5))
    assert home.saved_session().token == b"t" * 32
    assert home.session_path.stat().st_mode & 0o777 == 0o600
    home.clear_session()
    assert home.saved_session() is None
    await asyncio.sleep(0)


async def test_a_move_to_a_node_that_does_not_answer_keeps_the_connection(
    server, tmp_path
):
    host, port = server.address
    session = Session(f"{host}:{port}")
    await session.connect()
    await session.register("homebody", PASSWORD)
    await session.login("homebody", PASSWORD)
    try:
        # A UDP port nobody listens on: the handshake never completes.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            silent = probe.getsockname()[1]
            with pytest.raises(ConnectionFailed):
                await session.move_to(f"127.0.0.1:{silent}", timeout=0.5)
        assert (session.host, session.port) == (host, port)
        assert session.connected
        assert (await session.get_profile()).username == "homebody"
    finally:
        await session.close()
