"""The server as a process: start, certificates, ALPN, liveness, clean shutdown."""

import asyncio
import signal
import stat

import pytest

from client import Session, SessionClosed
from client.events import Disconnected
from codec.messages import ServerClosing
from server import ServerApp
from server.certs import certificate_fingerprint
from server.storage import SCHEMA_VERSION
from tests.conftest import PASSWORD, server_config, start_server_process

from .rawclient import raw_connect


def test_listening_line_certificate_and_sigterm(tmp_path):
    srv = start_server_process(tmp_path)
    try:
        assert srv.port != 0
        assert stat.S_IMODE(srv.key.stat().st_mode) == 0o600
        fingerprint = certificate_fingerprint(srv.cert.read_bytes())

        async def scenario():
            session = Session(srv.address)
            assert await session.connect() == fingerprint
            await session.register("sig", PASSWORD)
            await session.login("sig", PASSWORD)
            srv.proc.send_signal(signal.SIGTERM)
            events = []
            while True:
                event = await session.next_event(5)
                events.append(event)
                if isinstance(event, Disconnected):
                    break
            await session.close()
            return events

        events = asyncio.run(scenario())
        assert isinstance(events[0], ServerClosing)
        assert srv.proc.wait(10) == 0
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()

    again = start_server_process(tmp_path)
    try:
        assert certificate_fingerprint(again.cert.read_bytes()) == fingerprint

        async def resume_after_restart():
            session = Session(again.address)
            await session.connect()
            return await session.login("sig", PASSWORD)

        assert asyncio.run(resume_after_restart()).username == "sig"
        assert again.stop(signal.SIGINT) == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()


def test_certificate_names_include_extra_hostnames(tmp_path):
    from cryptography import x509

    srv = start_server_process(tmp_path, extra=["--hostname", "meet.example.org"])
    try:
        cert = x509.load_pem_x509_certificate(srv.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
        addresses = [str(a) for a in san.value.get_values_for_type(x509.IPAddress)]
        assert {"localhost", "meet.example.org"} <= set(names)
        assert "127.0.0.1" in addresses
        assert cert.public_key().curve.name == "secp256r1"
    finally:
        srv.stop()


async def test_wrong_alpn_is_refused_at_the_handshake(server):
    host, port = server.address
    with pytest.raises(ConnectionError):
        async with raw_connect(host, port, alpn="h3"):
            pass
    assert server.stats["connections_opened"] == 0


async def test_vanished_client_is_offline_within_ten_seconds(server, user):
    alice = await user("ghost")
    proto = alice._proto
    user_id = next(c.account.user_id for c in server.connections if c.account)
    assert server.presence.connection(user_id) is not None
    # Vanish without a word: stop the keepalive and drop the socket.
    proto._keepalive.cancel()
    if proto._timer is not None:
        proto._timer.cancel()
    proto._transport.close()
    loop = asyncio.get_running_loop()
    start = loop.time()
    while server.presence.connection(user_id) is not None:
        assert loop.time() - start < 10.0, "still online after 10 s"
        await asyncio.sleep(0.1)
    elapsed = loop.time() - start
    assert elapsed < 10.0
    alice._proto = None


async def test_idle_but_alive_client_stays_online(server, user):
    alice = await user("idler")
    await asyncio.sleep(server.config.idle_timeout + 2.0)
    assert alice.connected
    assert (await alice.get_profile()).username == "idler"


async def test_in_process_shutdown_tells_clients(tmp_path):
    app = ServerApp(server_config(tmp_path))
    host, port = await app.start()
    session = Session(f"{host}:{port}")
    await session.connect()
    await session.register("bye", PASSWORD)
    await session.login("bye", PASSWORD)
    await app.shutdown(grace=0.2)
    event = await session.next_event(5)
    assert isinstance(event, ServerClosing)
    await session.close()
    assert not isinstance(event, SessionClosed)


async def test_database_url_and_schema_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'custom.db'}"
    app = ServerApp(server_config(tmp_path, db_url=url))
    host, port = await app.start()
    session = Session(f"{host}:{port}")
    await session.connect()
    await session.register("viaurl", PASSWORD)
    await session.close()
    await app.shutdown(grace=0)
    assert (tmp_path / "custom.db").exists()
    assert not (tmp_path / "data" / "quicmeet.db").exists()

    again = ServerApp(server_config(tmp_path, db_url=url))
    before, after = await again.storage.start()
    assert before == after == SCHEMA_VERSION
    await again.shutdown(grace=0)


async def test_newer_schema_is_refused(tmp_path):
    app = ServerApp(server_config(tmp_path))
    await app.storage.start()

    def bump():
        from server.storage.models import SchemaVersion

        SchemaVersion.update(version=SCHEMA_VERSION + 1).execute()

    await app.storage.run(bump)
    app.storage.close()
    newer = ServerApp(server_config(tmp_path))
    with pytest.raises(RuntimeError, match="newer than this server"):
        await newer.storage.start()
    newer.storage.close()
