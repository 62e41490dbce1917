"""A file round trip through a real server over QUIC on loopback, both ends on
the batching endpoint: the path MTU search finds loopback carries more than
1,200 bytes, bursts leave in GSO sends and arrive coalesced (GRO) where the
kernel has them, and every byte arrives intact."""

import os
import socket

from client.transfers import Transfers
from codec.messages import FileOffered
from tests.conftest import befriend, eventually, next_of, sha256_of
from udpio import gso_supported
from udpio.mtu_probe import max_datagram_size


async def test_a_file_round_trip_goes_out_in_bursts_and_arrives_whole(
    server, member, tmp_path
):
    a = await member("alice")
    b = await member("bob")
    await befriend(a, b)
    proto = await a.session.wait_ready(5)
    # Loopback carries any size: the first probe (1,452 bytes) gets through.
    await eventually(lambda: proto.max_datagram_size > 1200)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    sent = await Transfers(a.session, a.store, tmp_path / "da").send("bob", source)
    assert sent.state == "done"
    offered = await next_of(b.session, FileOffered)
    got = await Transfers(b.session, b.store, tmp_path / "db").download(
        offered.file.file_id
    )
    assert got.state == "done"
    assert sha256_of(tmp_path / "db" / "big.bin") == sha256_of(source)

    stats = server.snapshot()
    # At most 1,452 bytes a packet each way (the server searched too).
    assert stats["udp_datagrams_sent"] > 2 * 1024 * 1024 // 1452
    assert stats["udp_datagrams_received"] > 2 * 1024 * 1024 // 1452
    assert all(max_datagram_size(conn.quic) > 1200 for conn in server.connections)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kernel_has_gso = gso_supported(probe)
    probe.close()
    assert server.endpoint is not None and server.endpoint.gso == kernel_has_gso
    if kernel_has_gso:
        # The download left in runs of packets, one system call each; the
        # client's upload bursts came in coalesced.
        assert stats["udp_send_calls"] < stats["udp_datagrams_sent"]
        assert stats["udp_receive_calls"] < stats["udp_datagrams_received"]
    else:
        assert stats["udp_send_calls"] == stats["udp_datagrams_sent"]
