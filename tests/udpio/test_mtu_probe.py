"""A path MTU probe through :mod:`udpio.mtu_probe` on two real aioquic connections wired
in memory: a packet of exactly the probed size, reported acknowledged when the
path carries it and lost when it does not, its padding dropped by the peer."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import DatagramFrameReceived

from client import quic_adapter as client_adapter
from codec.pmtu import CONFIRM_INTERVAL_S, PADDING_MARK, is_padding
from server.certs import ensure_certificate
from udpio import mtu_probe

CLIENT = ("10.0.0.1", 1234)
SERVER = ("10.0.0.2", 4433)


def pair(
    tmp_path: Path, client_datagrams: bool = True
) -> tuple[QuicConnection, QuicConnection]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, ["localhost"])
    client = QuicConnection(
        configuration=QuicConfiguration(
            is_client=True,
            alpn_protocols=["probe"],
            verify_mode=ssl.CERT_NONE,
            max_datagram_frame_size=65536 if client_datagrams else None,
        )
    )
    server_configuration = QuicConfiguration(
        is_client=False, alpn_protocols=["probe"], max_datagram_frame_size=65536
    )
    server_configuration.load_cert_chain(cert, key)
    server = QuicConnection(
        configuration=server_configuration,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    return client, server


class Wire:
    """Carries datagrams both ways on a virtual clock, dropping those over
    ``mtu`` bytes; records what it carried."""

    def __init__(self, client: QuicConnection, server: QuicConnection, mtu: int):
        self.client, self.server, self.mtu = client, server, mtu
        self.now = 0.0
        self.sizes: list[int] = []

    def send(self, sender: QuicConnection) -> None:
        receiver, source = (
            (self.server, CLIENT) if sender is self.client else (self.client, SERVER)
        )
        for data, _ in sender.datagrams_to_send(self.now):
            self.sizes.append(len(data))
            if len(data) <= self.mtu:
                receiver.receive_datagram(data, source, self.now)

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.send(self.client)
            self.send(self.server)
            timers = [
                t for t in (self.client.get_timer(), self.server.get_timer()) if t
            ]
            self.now = min([end, self.now + 0.01, *timers])
            for conn in (self.client, self.server):
                timer = conn.get_timer()
                if timer is not None and timer <= self.now:
                    conn.handle_timer(self.now)


@pytest.mark.parametrize(
    ("side", "mtu", "acked"),
    [("client", 1500, True), ("client", 1300, False), ("server", 1500, True)],
)
def test_a_probe_is_one_packet_of_the_size_and_its_fate_is_reported(
    tmp_path, side, mtu, acked
):
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, mtu)
    wire.run(0.5)
    while server.next_event() is not None:
        pass
    sender, receiver = (client, server) if side == "client" else (server, client)
    assert mtu_probe.max_datagram_size(sender) == 1200
    verdicts: list[bool] = []
    wire.sizes.clear()
    sent = mtu_probe.send_mtu_probe(
        sender, 1452, PADDING_MARK, lambda: wire.send(sender), verdicts.append
    )
    assert sent and wire.sizes == [1452]
    assert mtu_probe.max_datagram_size(sender) == 1200  # raised for the probe only
    wire.run(5.0)
    assert verdicts == [acked]
    padding = [
        e.data for e in iter(receiver.next_event, None)
        if isinstance(e, DatagramFrameReceived)
    ]  # fmt: skip
    assert [is_padding(p) for p in padding] == ([True] if acked else [])


def test_a_probe_the_congestion_window_holds_back_leaves_nothing_queued(tmp_path):
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, 1500)
    wire.run(0.5)
    verdicts: list[bool] = []
    # A transmit that sends nothing stands for a full congestion window.
    sent = mtu_probe.send_mtu_probe(
        client, 1452, PADDING_MARK, lambda: None, verdicts.append
    )
    assert not sent and not verdicts
    assert len(client_adapter.pending_datagrams(client)) == 0


def test_a_peer_without_datagram_frames_is_never_probed(tmp_path):
    """Sending it a DATAGRAM frame would be a protocol error: the connection
    protocols only start a search when the peer announced room for a probe."""
    client, server = pair(tmp_path, client_datagrams=False)
    client.connect(SERVER, now=0.0)
    Wire(client, server, 1500).run(0.5)
    assert not mtu_probe.accepts_padding_datagrams(server, 1452)
    assert mtu_probe.accepts_padding_datagrams(client, 1452)


def test_a_prober_settles_on_what_the_path_carries_and_falls_back(tmp_path):
    """A path that carries 1,300 bytes: 1,452 and 1,400 are lost, 1,280 gets
    through, and DATAGRAM payloads grow to what a 1,280-byte packet holds;
    when the path shrinks below that, two lost confirmations take it back to
    1,200 bytes. Each change is reported once."""
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, 1300)
    wire.run(0.5)
    changes: list[int] = []
    prober = mtu_probe.PathMtuProber(
        client, lambda: wire.now, lambda: changes.append(prober.packet_size)
    )
    assert prober.datagram_payload == 1200 - 30

    def run(seconds: int) -> None:
        for second in range(seconds):
            prober.probe(lambda: wire.send(client))
            client.send_ping(second)  # keeps the connection from idling out
            wire.run(1.0)

    run(10)
    assert (prober.packet_size, changes) == (1280, [1280])
    assert prober.datagram_payload == mtu_probe.datagram_payload_limit(client)
    assert prober.datagram_payload == 1280 - 30
    wire.mtu = 1250
    run(150)  # two confirmations, CONFIRM_INTERVAL_S apart
    assert (prober.packet_size, changes) == (1200, [1280, 1200])
    assert prober.datagram_payload == 1200 - 30


def test_an_idle_connection_sends_no_confirmations_until_it_sends(tmp_path):
    """The server's side of an idle connection only acknowledges its client's
    keepalives: once its size is found, no confirmation probe leaves for many
    intervals; the first transmit after it sends data again confirms."""
    client, server = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server, 1500)
    wire.run(0.5)
    prober = mtu_probe.PathMtuProber(server, lambda: wire.now)

    def run(seconds: int, send: bool = False) -> None:
        for second in range(seconds):
            if send:
                server.send_datagram_frame(b"\x80media")
            prober.probe(lambda: wire.send(server))
            client.send_ping(second)  # the client's keepalive
            wire.run(1.0)

    run(5)
    assert prober.packet_size == 1452  # the search itself runs idle or not
    wire.sizes.clear()
    run(4 * int(CONFIRM_INTERVAL_S))
    assert max(wire.sizes) < 1452 - 100  # ACKs and the client's PINGs only
    run(2, send=True)
    assert 1452 in wire.sizes  # the confirmation, at the first chance
