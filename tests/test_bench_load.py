"""``bench/load.py`` tells whose socket overflowed, the node's or the
generators', and what waits in them: the kernel's per-socket counts, read
for the ports asked for and no other (real loopback sockets); and a small run
of it, whose users log off at once, finds every connection they ended freed
by the node without the collector."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from aioquic import tls

from client.quic_adapter import set_idle_timer
from codec.errors import CloseCode
from server.app import ServerApp
from tests.conftest import ROOT, eventually, server_config


@pytest.fixture
def load(bench):
    return bench("load")  # bench/load.py


def loopback(receive_buffer: int | None = None) -> socket.socket:
    """A UDP socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_drops_are_counted_for_the_sockets_asked_for(load):
    full, quiet, sender = loopback(4096), loopback(), loopback()
    full_port, quiet_port = full.getsockname()[1], quiet.getsockname()[1]
    try:
        assert load.udp_socket_drops({full_port, quiet_port}) == 0
        for _ in range(200):
            sender.sendto(bytes(500), ("127.0.0.1", full_port))
        sender.sendto(bytes(500), ("127.0.0.1", quiet_port))
        full.setblocking(False)
        kept = 0
        while True:
            try:
                full.recv(1000)
            except BlockingIOError:
                break
            kept += 1
        assert 0 < kept < 200
        assert load.udp_socket_drops({full_port}) == 200 - kept
        assert load.udp_socket_drops({quiet_port}) == 0
        assert load.udp_socket_drops({full_port, quiet_port}) == 200 - kept
    finally:
        for s in (full, quiet, sender):
            s.close()


def test_what_waits_in_a_socket_is_counted_for_its_port(load):
    waiting, other, sender = loopback(), loopback(), loopback()
    port, other_port = waiting.getsockname()[1], other.getsockname()[1]
    try:
        for _ in range(10):
            sender.sendto(bytes(500), ("127.0.0.1", port))
        # The kernel counts each datagram's buffer, more than its payload.
        assert load.udp_socket_queued({port}) >= 10 * 500
        assert load.udp_socket_queued({other_port}) == 0
        for _ in range(10):
            waiting.recv(1000)
        assert load.udp_socket_queued({port}) == 0
    finally:
        for s in (waiting, other, sender):
            s.close()


def test_the_ramp_halves_when_congested_and_climbs_back_by_tenths(bench):
    next_rate = bench("_load_clients").next_rate

    rate = 100.0
    for expected in (50.0, 25.0, 12.5):
        rate = next_rate(rate, 100.0, congested=True)
        assert rate == expected
    for _ in range(20):
        rate = next_rate(rate, 100.0, congested=True)
    assert rate == 100.0 / 64  # never stops
    climbed = [rate := next_rate(rate, 100.0, congested=False) for _ in range(12)]
    assert climbed[0] == 100.0 / 64 + 10.0
    assert climbed[-1] == 100.0  # capped at what was asked


def test_the_machines_busy_share_counts_every_core(bench):
    common = bench("_common")
    assert common.busy_share((100, 400), (250, 600)) == 0.75
    assert common.busy_share((100, 400), (100, 400)) == 0.0  # no tick passed
    before = common.machine_cpu_ticks()
    # One process spinning on this machine's cores keeps at least its share
    # of them busy (others' work only adds to it).
    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 0.5\n"
         "while time.time() < end: pass"]
    )  # fmt: skip
    spinner.wait(30)
    after = common.machine_cpu_ticks()
    assert 0 <= after[0] - before[0] <= after[1] - before[1]
    assert common.busy_share(before, after) >= 0.5 / (os.cpu_count() or 1)


def test_churn_takes_a_share_of_the_users(load):
    assert load.share("0.5") == 0.5 and load.share("1") == 1.0
    for wrong in ("0", "-0.1", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a share"):
            load.share(wrong)


def test_users_who_log_off_leave_the_node_nothing_to_reclaim():
    """A real node (``quicmeet-server``, heap frozen, asking every login for a
    Retry) and a real generator: half the users close their connections at
    once; the node's heap freezer finds each of them freed by refcounting,
    none stuck, no whole-heap pass."""
    run = subprocess.run(
        [
            sys.executable,
            "load.py",
            "--connections",
            "60",
            "--procs",
            "1",
            "--sockets",
            "2",
            "--steps",
            "1",
            "--settle",
            "1",
            "--chat-rate",
            "20",
            "--duration",
            "1",
            "--timeout",
            "120",
            "--churn",
            "0.5",
            "--churn-watch",
            "13",
            # Every login through a QUIC Retry: the generator's clients
            # answer one as the client core does.
            "--server-arg=--max-unvalidated-handshakes=0",
        ],
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["steps"][-1]["connections"] == 60
    assert result["steps"][-1]["retries_sent"] >= 60
    churn = result["churn"]
    assert churn["closed"] == 30 and churn["held_after"] == 30
    assert churn["gc_released_connections"] == 30
    assert churn["gc_stuck_connections"] == 0
    assert churn["gc_reclaims"] == 0
    assert churn["chat_received"] == churn["chat_sent"] > 0


@contextlib.asynccontextmanager
async def four_users_on_a_node(bench, tmp_path):
    """A real node with four seeded users, and a generator of theirs over
    one socket, opened."""
    load, clients = bench("load"), bench("_load_clients")
    tokens = await load.seed(tmp_path / "data", 4)
    app = ServerApp(server_config(tmp_path))
    await app.start()
    generator = clients.Generator(
        app.address, list(enumerate(tokens)), sockets=1, in_flight=4
    )
    try:
        await generator.open()
        yield app, generator
    finally:
        await generator.close()
        await app.shutdown(grace=0.0)


async def test_a_user_whose_connection_ended_logs_in_again(bench, tmp_path):
    """With ``--reconnect`` the generator's users reconnect as the client
    core does: a connection the node ended (here closed by it; in a run,
    idle timeouts while a side was behind) is replaced at the next ramp by
    a new login of the same user, and the old one's connection ids leave
    the socket's table. Without it, an ended connection stays ended."""
    async with four_users_on_a_node(bench, tmp_path) as (app, generator):
        first = await generator.ramp(4, 200.0, 30.0)
        assert first["held"] == 4 and first["reopened"] == 0
        ended = generator.clients[2]
        [conn] = [c for c in app.connections if c.account.username == "load000002"]
        conn.close_with(CloseCode.SHUTDOWN, "going away")
        await eventually(lambda: ended.closed)
        assert generator.held() == 3
        # Counted under the node's key of its connection (the first byte of
        # the node's connection id), for load.py's ended_by_key.
        assert generator.stats.ended_keys == {conn.quic.host_cid[0]: 1}
        assert bench("load").ended_by_key(
            [{"ended_keys": dict(generator.stats.ended_keys)}, {}]
        ) == {"ended": 1, "keys": 1, "most_in_one_key": 1}
        assert (await generator.ramp(4, 200.0, 30.0))["reopened"] == 0
        again = await generator.ramp(4, 200.0, 30.0, reconnect=True)
        assert again["held"] == 4 and again["reopened"] == 1
        assert generator.clients[2] is not ended and generator.clients[2].up
        assert ended not in generator.muxes[0].by_cid.values()
        assert len(app.connections) == 4


async def test_a_generator_behind_sheds_as_the_node_does(bench, tmp_path, monkeypatch):
    """A generator reads on the client core's I/O layer with the node's
    shedding: behind (here each datagram takes it 5 ms), it drops unread
    what waited past its limit instead of reading everything late, and
    counts what it shed."""
    clients = bench("_load_clients")
    async with four_users_on_a_node(bench, tmp_path) as (app, generator):
        assert (await generator.ramp(4, 200.0, 30.0))["held"] == 4
        [mux] = generator.muxes
        assert mux.transport.queue_delay.limit == clients.MAX_RECEIVE_DELAY_S
        handled = []

        def slow(self, data, addr):
            time.sleep(0.005)
            handled.append(data)

        monkeypatch.setattr(clients.Mux, "datagram_received", slow)
        with loopback() as flood:
            for n in range(300):
                flood.sendto(
                    n.to_bytes(2, "big") * 20, mux.transport.get_extra_info("sockname")
                )
        await eventually(lambda: len(handled) + generator.shed() == 300, timeout=10)
        assert 0 < generator.shed() < 300
        assert handled[0] == bytes(2) * 20  # the first waited under the limit


async def test_keepalives_on_the_short_path_are_acknowledged_by_the_node(
    bench, tmp_path, monkeypatch
):
    """The generator's PINGs are built on the short path (aioquic's builder
    only when something else is due): a real node reads and acknowledges
    them, and the connections stay up with nothing left in flight."""
    clients = bench("_load_clients")
    async with four_users_on_a_node(bench, tmp_path) as (app, generator):
        assert (await generator.ramp(4, 200.0, 30.0))["held"] == 4
        spaces = [c.quic._spaces[tls.Epoch.ONE_RTT] for c in generator.clients]
        await eventually(lambda: all(s.ack_at is None for s in spaces))
        numbers = [c.quic._packet_number for c in generator.clients]
        sent = generator.sent()
        built = []
        short = clients.send_ping

        def send_ping(quic, now):  # the real one, counted
            sent = short(quic, now)
            built.append(sent is not None)
            return sent

        monkeypatch.setattr(clients, "send_ping", send_ping)
        for _ in range(5):
            for client in generator.clients:
                client.ping()
            await asyncio.sleep(0.05)
        # one packet per PING, every one acknowledged; built on the short path
        # unless the node's own packet just then left an ACK owed
        assert len(built) == 20 and built.count(True) >= 10
        assert [c.quic._packet_number for c in generator.clients] == [
            n + 5 for n in numbers
        ]
        # what a step's idle_datagrams_per_keepalive counts: a datagram each
        assert generator.sent() - sent == 20
        await eventually(
            lambda: all(c.quic._loss.bytes_in_flight == 0 for c in generator.clients)
        )
        assert generator.held() == 4
        assert not generator.stats.errors


async def test_ack_only_keepalives_reach_the_node_and_draw_nothing(bench, tmp_path):
    """Between its PINGs a generator sends what the client core sends for a
    node with a long idle timeout: an ACK-only packet. A real node reads it
    (its idle timer restarts) and sends nothing back."""
    async with four_users_on_a_node(bench, tmp_path) as (app, generator):
        assert (await generator.ramp(4, 200.0, 30.0))["held"] == 4
        spaces = [c.quic._spaces[tls.Epoch.ONE_RTT] for c in generator.clients]
        await eventually(lambda: all(s.ack_at is None for s in spaces))
        await asyncio.sleep(0.1)  # the node's last ACKs arrive
        conns = {c.account.username: c for c in app.connections}
        node_conns = [conns[f"load{c.index:06d}"] for c in generator.clients]
        node_quics = [c.quic for c in node_conns]
        node_sent = [q._packet_number for q in node_quics]
        idle_at = [q._close_at for q in node_quics]
        deadlines = [c.deadline_at for c in node_conns]
        sent = generator.sent()
        quiet = app.snapshot()["quiet_packets_received"]
        assert all(client.keepalive_ack() for client in generator.clients)
        restarted = list(zip(node_quics, idle_at, strict=True))
        await eventually(lambda: all(q._close_at > t for q, t in restarted))
        await asyncio.sleep(0.1)
        assert generator.sent() - sent == 4  # one datagram each
        assert [q._packet_number for q in node_quics] == node_sent  # no answer
        # Quiet receipts: the node did nothing after reading them, not even
        # re-arm the connections' deadlines for their later idle timers.
        assert app.snapshot()["quiet_packets_received"] - quiet == 4
        assert [c.deadline_at for c in node_conns] == deadlines
        assert generator.held() == 4
        assert not generator.stats.errors


async def test_ack_only_keepalives_alone_hold_a_node_connection(bench, tmp_path):
    """Quiet receipts leave a node connection's deadline where it was, set
    for the idle timeout before them: when it comes, the node finds the idle
    timer restarted and keeps the connection. Keepalives of ACK frames alone
    hold it for five of the node's idle timeouts; once they stop, the node
    ends it one idle timeout later."""
    load, clients = bench("load"), bench("_load_clients")
    tokens = await load.seed(tmp_path / "data", 2)
    app = ServerApp(server_config(tmp_path, idle_timeout=1.0))
    await app.start()
    generator = clients.Generator(app.address, list(enumerate(tokens)), 1, 2)
    try:
        await generator.open()
        assert (await generator.ramp(2, 200.0, 30.0))["held"] == 2
        for task in generator.tasks:
            task.cancel()  # no PINGs: the keepalives below alone
        for client in generator.clients:
            # The client's own timer long enough not to give the silent
            # node up meanwhile (the PINGs' answers would restart it).
            set_idle_timer(client.quic, 30.0)
        await asyncio.sleep(0.3)  # the login's last packets acknowledged
        quiet = app.snapshot()["quiet_packets_received"]
        deadlines = app.endpoint.deadlines.fired
        started = time.monotonic()
        while time.monotonic() - started < 5.0:
            assert all(client.keepalive_ack() for client in generator.clients)
            await asyncio.sleep(0.25)
        assert len(app.connections) == 2
        assert app.snapshot()["quiet_packets_received"] - quiet >= 2 * 15
        assert app.endpoint.deadlines.fired > deadlines  # the early ones came
        await eventually(lambda: not app.connections, timeout=3.0)
        assert generator.held() == 2  # the clients' own timers still run
    finally:
        await generator.close()
        await app.shutdown(grace=0.0)
