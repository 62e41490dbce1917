"""A node that was stopped drops what waited too long in its socket, and loses
nothing: QUIC's senders probe and send again, and the chat arrives once."""

import asyncio
import json
import os
import signal
import socket

import pytest

from server.cli import parse_args
from tests.conftest import (
    befriend,
    close_member,
    eventually,
    open_member,
    start_server_process,
)

MESSAGES = 30
FLOOD = 3000


# A millisecond, so that the node sheds in any test run; and off.
@pytest.mark.parametrize("max_delay", ["0.001", "0"])
async def test_a_stopped_node_sheds_stale_datagrams_and_loses_nothing(
    tmp_path, max_delay
):
    stats = tmp_path / "stats.json"
    srv = start_server_process(
        tmp_path,
        extra=["--stats-file", str(stats), "--max-receive-delay", max_delay],
    )
    members = []
    try:
        alice = await open_member(srv.address, "alice", tmp_path / "alice")
        members.append(alice)
        bob = await open_member(srv.address, "bob", tmp_path / "bob")
        members.append(bob)
        await befriend(alice, bob)

        # Stopped for a second and a half (under the 5 s idle timeout), while
        # alice sends and a stranger floods the node with datagrams of no
        # connection: once it runs again, working through them all takes it
        # more than a millisecond, and what is still queued then is shed.
        srv.proc.send_signal(signal.SIGSTOP)
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for n in range(MESSAGES):
                await alice.chat.send("bob", f"during the stop {n}")
                for _ in range(FLOOD // MESSAGES):
                    flood.sendto(b"\x40" + os.urandom(60), (srv.host, srv.port))
                await asyncio.sleep(0.05)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
            flood.close()
        await alice.chat.send("bob", "after the stop")

        texts: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(texts) < MESSAGES + 1:
            assert loop.time() < deadline, texts
            await asyncio.sleep(0.1)
            await bob.chat.drain()
            texts = [m.text for m in await bob.chat.history("alice", limit=100)]
        assert texts == [f"during the stop {n}" for n in range(MESSAGES)] + [
            "after the stop"
        ]

        srv.proc.send_signal(signal.SIGUSR1)
        await eventually(stats.exists)
        await asyncio.sleep(0.1)  # the server writes it whole, then renames
        counters = json.loads(stats.read_text())
        if max_delay == "0":
            assert counters["udp_datagrams_shed"] == 0
        else:
            assert counters["udp_datagrams_shed"] > 0
        assert counters["connections"] == 2  # nobody was dropped
    finally:
        for m in members:
            await close_member(m)
        srv.stop()


async def test_the_node_tells_its_connections_ids_from_new_ones(server, member):
    # The endpoint asks the router whose a long header's packet is: one to an
    # id of no connection is a new connection's first flight, which waits for
    # its turn after the connections' datagrams (tests/udpio/test_queue_delay.py).
    alice = await member("alice")
    quic = (await alice.session.wait_ready(1))._quic
    router = server._server
    assert router.knows_connection_id(quic._peer_cid.cid)
    assert not router.knows_connection_id(os.urandom(8))
    assert server.endpoint._knows == router.knows_connection_id
    # Alice's first flight went that way, and got in.
    assert server.endpoint.stats["new_connection_datagrams_shed"] == 0
    assert server.snapshot()["udp_new_connection_datagrams_shed"] == 0


def test_the_command_line_option(capsys):
    assert parse_args([]).max_receive_delay == 0.25
    assert parse_args(["--max-receive-delay", "0.5"]).max_receive_delay == 0.5
    assert parse_args(["--max-receive-delay", "0"]).max_receive_delay is None
    with pytest.raises(SystemExit):
        parse_args(["--max-receive-delay", "-1"])
    assert "--max-receive-delay must not be negative" in capsys.readouterr().err
