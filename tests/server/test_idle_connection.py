"""What an idle server connection keeps: the handshake's buffers are released,
the ACK-only packets answering keepalives are not kept, no request worker
waits, its queues hold no deque's block, it asks its client for two
connection ids, the crypto pairs of spent epochs are one shared pair and the
duplicate detection window is a bit mask, yet the connection still carries
chat, files, meetings, a key update and a change of connection id
afterwards."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from collections import deque

import pytest
from aioquic import tls
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.recovery import QuicPacketNumberWindow

from client.quic_adapter import close_event
from client.transfers import Transfers
from codec import ALPN
from codec.messages import ChatMessage, FileOffered
from server.quic_adapter import (
    PEER_CONNECTION_IDS,
    ConnectionRouter,
    IdleQueue,
    PacketNumberWindow,
    PacketSpace,
    SlimLimit,
    connection_ids,
    holds_handshake_buffers,
    idle_queues,
    peer_connection_ids,
    sent_packet_records,
    spent_crypto_pairs,
    spent_packet_spaces,
)
from tests.conftest import (
    address,
    befriend,
    close_member,
    eventually,
    next_of,
    open_member,
    sha256_of,
)
from tests.server.test_rooms_sfu import video


def server_side(server, member):
    (conn,) = [
        c
        for c in server.connections
        if c.account is not None and c.account.username == member.name
    ]
    return conn


async def test_handshake_state_is_released_and_the_connection_still_works(
    server, member, tmp_path
):
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    conns = [server_side(server, alice), server_side(server, bob)]
    assert not any(holds_handshake_buffers(c.quic) for c in conns)

    # A key update from each client (the new keys come from the 1-RTT secrets,
    # not from the released TLS buffers) and the traffic after it.
    for m in (alice, bob):
        proto = await m.session.wait_ready(5)
        proto.quic.request_key_update()
        proto.transmit()
    sent = await alice.chat.send("bob", "after the key update")
    assert sent.state in ("sent", "delivered")
    got = await next_of(bob.session, ChatMessage, timeout=10)
    assert got.text == "after the key update"

    source = tmp_path / "notes.bin"
    source.write_bytes(os.urandom(300_000))
    up = await Transfers(alice.session, alice.store, tmp_path / "d-a").send(
        "bob", source
    )
    assert up.state == "done"
    offered = await next_of(bob.session, FileOffered, timeout=10)
    down = await Transfers(bob.session, bob.store, tmp_path / "d-b").download(
        offered.file.file_id
    )
    assert down.state == "done"
    assert sha256_of(tmp_path / "d-b" / "notes.bin") == sha256_of(source)

    inbox: list[bytes] = []
    bob.session.rooms.datagram_handler = inbox.append
    room_id = (await alice.session.rooms.create()).room_id
    await bob.session.rooms.join(room_id)
    track = await alice.session.rooms.publish("camera", 320, 240, 15)
    assert alice.session.rooms.send_datagrams(
        [video(track.track_id, seq) for seq in range(10)], max_queued=100
    )
    await eventually(lambda: len(inbox) == 10)


async def test_keepalives_of_an_idle_client_leave_no_packet_records(server, member):
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    conn = server_side(server, alice)
    proto = await alice.session.wait_ready(5)
    await asyncio.sleep(0.3)  # the login's own packets acknowledged
    for _ in range(40):
        proto.quic.send_ping(0)
        proto.transmit()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    # Each PING drew an ACK-only packet that the client never acknowledges;
    # aioquic alone keeps a record of all 40.
    assert sent_packet_records(conn.quic) < 5
    # The PINGs' packet numbers sit in a bit mask, not in a set of ints.
    window = conn.quic._spaces[tls.Epoch.ONE_RTT].received_packets
    assert isinstance(window, PacketNumberWindow)
    sent = await alice.chat.send("bob", "still here")
    assert sent.state in ("sent", "delivered")


def request_workers() -> list[asyncio.Task]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_coro().__qualname__ == "ClientConnection._serve_requests"
    ]


async def test_an_idle_connection_holds_no_request_worker(server, member):
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    await eventually(lambda: not request_workers())
    # Requests still get their replies, in order, and the worker ends after.
    replies = await asyncio.gather(
        *(alice.chat.send("bob", f"message {n}") for n in range(20))
    )
    assert [r.seq for r in replies] == list(range(1, 21))
    await eventually(lambda: not request_workers())


def test_an_idle_queue_behaves_as_the_deque_it_replaces():
    queue = IdleQueue(deque([1, 2]))
    queue.append(3)
    queue.insert(1, 9)
    assert (queue.popleft(), queue[0], len(queue)) == (1, 9, 3)
    bounded = IdleQueue(maxlen=2)
    for item in "abc":
        bounded.append(item)
    assert list(bounded) == ["b", "c"]
    bounded.clear()
    with pytest.raises(IndexError):
        bounded.popleft()
    assert sys.getsizeof(IdleQueue()) < sys.getsizeof(deque()) / 5


async def test_an_idle_connection_keeps_small_queues_and_two_connection_ids(
    server, member
):
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    conn = server_side(server, alice)
    quic = conn.quic
    queues = idle_queues(quic)
    assert len(queues) == 4
    assert all(isinstance(q, IdleQueue) for q in queues)
    assert peer_connection_ids(quic) <= PEER_CONNECTION_IDS
    # The client moves to its spare id: the server is issued another and
    # still keeps no more than two; chat goes on.
    client_quic = (await alice.session.wait_ready(5)).quic
    # And the client asks the server for two only (each one issued is kept in
    # the server's connection for its life).
    assert peer_connection_ids(client_quic) <= PEER_CONNECTION_IDS
    for _ in range(2):
        client_quic.change_connection_id()
        sent = await alice.chat.send("bob", "on a new connection id")
        assert sent.state in ("sent", "delivered")
        assert (await next_of(bob.session, ChatMessage, timeout=10)).text == (
            "on a new connection id"
        )
    await eventually(lambda: peer_connection_ids(quic) == PEER_CONNECTION_IDS)


class ScanCounting(dict):
    """The server's table of connection ids, counting whole-table scans."""

    scans = 0

    def items(self):
        self.scans += 1
        return super().items()

    def values(self):
        self.scans += 1
        return super().values()

    def keys(self):
        self.scans += 1
        return super().keys()

    def __iter__(self):
        self.scans += 1
        return super().__iter__()


async def test_an_ended_connection_leaves_the_routing_table_without_a_scan(
    server, member, tmp_path
):
    """The server forgets an ended connection's ids by asking the connection
    for them (aioquic scanned the whole table, 300,000 entries at 100,000
    connections): after clients on moved ids and a handshake abandoned half
    way end, the table holds the ids of the connection still open, and it
    was never scanned."""
    router = server._server
    table = router._protocols = ScanCounting(router._protocols)

    def open_ones():
        return set(dict.values(table))

    alice = await open_member(address(server), "alice", tmp_path / "alice")
    bob = await open_member(address(server), "bob", tmp_path / "bob")
    await befriend(alice, bob)
    for m in (alice, bob):
        (await m.session.wait_ready(5)).quic.change_connection_id()
        await m.session.get_profile()  # the server sees the new id in use
    carl = await member("carl")
    kept = server_side(server, carl)
    # A client that sends its first flight and is never heard from again.
    abandoned = QuicConnection(
        configuration=QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    )
    abandoned.connect(server.address, now=0.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for data, addr in abandoned.datagrams_to_send(now=0.0):
        sock.sendto(data, addr)
    sock.close()
    await eventually(lambda: len(open_ones()) == 4)
    half_open = next(p for p in open_ones() if p not in server.connections)
    half_open._quic.close()
    half_open.transmit()
    await close_member(alice)
    await close_member(bob)
    await eventually(lambda: open_ones() == {kept}, timeout=10)
    assert table.scans == 0
    assert {cid for cid, p in dict.items(table) if p is kept} <= set(
        connection_ids(kept.quic)
    )
    assert (await carl.session.get_profile()).username == "carl"


@pytest.mark.parametrize("seed", range(4))
def test_the_packet_number_window_answers_as_aioquics(seed):
    """Duplicate detection is unchanged: after every packet number recorded
    (in order, reordered, repeated, after jumps), each number near the window
    is a duplicate for the bit mask exactly when it is for aioquic's set."""
    rng = random.Random(seed)
    theirs = QuicPacketNumberWindow()
    number = 0
    for _ in range(200):
        number += rng.choice([1, 1, 1, 2, 5, 40, 300])
        theirs.add(number)
    ours = PacketNumberWindow.replacing(theirs)
    for _ in range(3000):
        step = rng.choice([1, 1, 1, 2, 7, -3, -60, -200, 130, 1000])
        number = max(0, number + step)
        theirs.add(number)
        ours.add(number)
        probes = range(max(0, number - 300), number + 5)
        assert [p in ours for p in probes] == [p in theirs for p in probes]


def test_the_packet_number_window_stays_small():
    window = PacketNumberWindow()
    for number in range(0, 100_000, 3):
        window.add(number)
    assert sys.getsizeof(window._bits) < 64
    assert 99_999 in window and 99_998 not in window and 99_997 not in window


async def test_spent_crypto_pairs_are_shared(server, member):
    alice = await member("alice")
    bob = await member("bob")
    conns = [server_side(server, alice), server_side(server, bob)]
    # Initial (once per supported version, and its alias), Handshake and
    # the unused 0-RTT pair.
    assert all(spent_crypto_pairs(c.quic) >= 3 for c in conns)
    await befriend(alice, bob)
    sent = await alice.chat.send("bob", "with the spent pairs shared")
    assert sent.state in ("sent", "delivered")


async def test_slim_limits_and_packet_spaces_keep_flow_control_and_recovery(
    server, member, tmp_path
):
    """After the trim the connection's flow-control limits and 1-RTT packet
    space are slotted stand-ins and its Initial and Handshake spaces one
    shared read-only space; the limits still grow as the client uses them
    (more streams than the first MAX_STREAMS allowed, more bytes than the
    first MAX_DATA), loss recovery still clears what the client
    acknowledges, and a close ends the connection."""
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    quic = server_side(server, alice).quic
    assert spent_packet_spaces(quic) == 2
    assert isinstance(quic._spaces[tls.Epoch.ONE_RTT], PacketSpace)
    assert all(space in quic._loss.spaces for space in quic._spaces.values())
    limits = (quic._local_max_streams_bidi, quic._local_max_data)
    assert all(isinstance(limit, SlimLimit) for limit in limits)
    first_streams, first_data = (limit.value for limit in limits)

    proto = await alice.session.wait_ready(5)
    for _ in range((first_streams + 32) // 16):  # empty streams, 16 at a time
        for _ in range(16):
            stream_id = proto.quic.get_next_available_stream_id()
            proto.quic.send_stream_data(stream_id, b"", end_stream=True)
        proto.transmit()
        await asyncio.sleep(0.05)
    await eventually(lambda: quic._local_max_streams_bidi.used >= first_streams + 32)
    source = tmp_path / "large.bin"
    source.write_bytes(os.urandom(first_data * 2))
    up = await Transfers(alice.session, alice.store, tmp_path / "d-a").send(
        "bob", source
    )
    assert up.state == "done"
    assert quic._local_max_streams_bidi.value > first_streams
    assert quic._local_max_data.value > first_data
    await eventually(lambda: sent_packet_records(quic) < 20)

    spent = quic._spaces[tls.Epoch.INITIAL]
    with pytest.raises(AttributeError):
        spent.largest_received_packet = 7
    assert spent_packet_spaces(server_side(server, bob).quic) == 2
    assert not spent.sent_packets and len(spent.ack_queue) == 0

    await alice.session.close()
    await eventually(lambda: quic._spaces[tls.Epoch.ONE_RTT].discarded)
    sent = await bob.chat.send("alice", "bob's connection goes on")
    assert sent.state in ("sent", "queued", "delivered")


async def test_a_tls_message_after_the_handshake_closes_only_that_connection(
    server, member
):
    """The trimmed connection's TLS stand-in answers CRYPTO data of the 1-RTT
    epoch with TLS's unexpected_message alert, as aioquic's context did."""
    alice = await member("alice")
    bob = await member("bob")
    await befriend(alice, bob)
    proto = await alice.session.wait_ready(5)
    crypto = proto.quic._crypto_streams[tls.Epoch.ONE_RTT]
    crypto.sender.write(b"\x18\x00\x00\x01\x00")  # a KeyUpdate message
    proto.transmit()
    await eventually(lambda: close_event(proto.quic) is not None)
    assert close_event(proto.quic).error_code == 0x100 + 10  # unexpected_message
    assert server_side(server, bob).quic.tls.state == tls.State.SERVER_POST_HANDSHAKE
    sent = await bob.chat.send("alice", "bob's connection goes on")
    assert sent.state in ("sent", "delivered")


class _Sink:
    """Where a router hands a connection's datagrams."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.got.append(data)


async def test_short_headers_are_routed_as_aioquic_routes_them():
    """The router takes a short header's connection id from its first bytes;
    every datagram ends where aioquic's own server sends it (or nowhere)."""
    configuration = QuicConfiguration(is_client=False)
    length = configuration.connection_id_length
    known, other = os.urandom(length), os.urandom(length)
    datagrams = [
        b"",
        b"\x40",  # too short to hold a connection id
        b"\x40" + known[:-1],
        b"\x41" + known,  # the id and nothing else
        b"\x41" + known + os.urandom(40),
        b"\x5f" + known + os.urandom(1200),
        b"\x01" + known + os.urandom(40),  # the fixed bit clear
        b"\x41" + other + os.urandom(40),  # an id nobody holds
        b"\xc3" + os.urandom(40),  # a long header that does not parse
    ]
    sinks = []
    for router_class in (QuicServer, ConnectionRouter):
        router = router_class(configuration=configuration)
        sink = _Sink()
        router._protocols[known] = sink
        for data in datagrams:
            router.datagram_received(data, ("127.0.0.1", 1))
        sinks.append(sink.got)
    assert sinks[1] == sinks[0] == datagrams[3:6]
