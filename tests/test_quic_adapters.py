"""The aioquic private attributes our adapters read still exist (one adapter per
side, and :mod:`udpio.mtu_probe`, which both use for path MTU probes), and each
adapter function works on a real connection (run this after any aioquic
upgrade: pyproject.toml pins it below the next minor version)."""

from collections import deque

from aioquic import tls
from aioquic.quic.recovery import QuicPacketNumberWindow

from client import quic_adapter as client_adapter
from server import quic_adapter as server_adapter
from server import quic_fastpath
from tests.conftest import eventually
from udpio import (
    ack_delay,
    controller,
    held_events,
    mtu_probe,
    pacing,
    queue_delay,
    rtt_samples,
    short_acks,
    short_path,
    short_receive,
)


async def test_every_private_attribute_exists_on_a_live_connection(server, connect):
    session = await connect()
    proto = await session.wait_ready(5)
    await eventually(lambda: server.connections)
    (conn,) = server.connections
    instances = {
        "client": [proto, proto.quic, proto.quic._loss, proto.quic.tls],
        "server": [
            conn,
            conn._closed,
            conn.quic,
            conn.quic._loss,
            conn.quic._cryptos[tls.Epoch.ONE_RTT].send,
            conn.quic.tls,
            server._server,
            # the trim replaces the connection's own; this is what it reads
            QuicPacketNumberWindow(),
        ],
    }
    adapters = (
        ("client", client_adapter),
        ("server", server_adapter),
        ("client", mtu_probe),
        ("server", mtu_probe),
        ("server", quic_fastpath),
        ("client", ack_delay),
        ("server", ack_delay),
        ("client", short_path),
        ("server", short_path),
        ("client", pacing),
        ("server", pacing),
        ("client", rtt_samples),
        ("server", rtt_samples),
        ("client", short_receive),
        ("server", short_receive),
        ("client", controller),
        ("server", controller),
        ("client", held_events),
        ("server", held_events),
    )
    for side, adapter in adapters:
        for cls, attributes in adapter.PRIVATE_ATTRIBUTES.items():
            objects = [o for o in instances[side] if isinstance(o, cls)]
            assert objects, f"{side}: no live {cls.__name__} to check"
            for name in attributes:
                assert hasattr(objects[0], name), f"{cls.__name__}.{name} is gone"

    # Both ends build their ACK-only packets on the short path
    # (udpio.short_acks reads udpio.short_path's attributes, checked above).
    assert isinstance(proto.quic, short_acks.ShortAcks)
    assert isinstance(conn.quic, short_acks.ShortAcks)

    assert client_adapter.peer_certificate(proto.quic) is not None
    assert len(client_adapter.pending_datagrams(proto.quic)) == 0
    assert client_adapter.close_event(proto.quic) is None
    assert server_adapter.peer_host(conn.quic) == "127.0.0.1"
    # The trimmed connection's list-backed queue becomes a deque for the SFU.
    assert isinstance(server_adapter.pending_datagrams(conn.quic), deque)
    assert len(server_adapter.pending_datagrams(conn.quic)) == 0
    assert (
        server_adapter.server_socket(server._server).getsockname()[1]
        == (server.address[1])
    )
    await eventually(lambda: client_adapter.smoothed_rtt(proto.quic) is not None)
    assert 0 < client_adapter.smoothed_rtt(proto.quic) < 5
    await eventually(lambda: server_adapter.smoothed_rtt(conn.quic) is not None)
    assert 0 < server_adapter.smoothed_rtt(conn.quic) < 5
    # both ends hold a burst's events for its end (udpio.held_events)
    assert isinstance(proto, held_events.HoldsEvents)
    assert isinstance(conn, held_events.HoldsEvents)
    for quic in (proto.quic, conn.quic):
        # both ends pace as udpio.pacing says from the end of the handshake
        assert isinstance(quic._loss._pacer, pacing.GranularPacer)
        assert isinstance(quic._loss, rtt_samples.ReportsAckDelay)
        # and receive their steady state's packets on the short path, under
        # the delayed-ACK policy
        assert isinstance(quic, short_receive.ShortReceive)
        mro = type(quic).__mro__
        assert mro.index(ack_delay.DelayedAcks) < mro.index(short_receive.ShortReceive)
        await eventually(lambda q=quic: mtu_probe.max_datagram_size(q) == 1452)
        assert mtu_probe.datagram_payload_limit(quic) == 1452 - 30
    # the node's loss timers wait out its backlog (the client's: nothing to
    # wait out)
    assert isinstance(conn.quic._loss, queue_delay.BacklogAwareRecovery)
    assert not isinstance(proto.quic._loss, queue_delay.BacklogAwareRecovery)
    # the probes' acknowledgements came on the short receive path
    assert server_adapter.short_packets_received() > 0
