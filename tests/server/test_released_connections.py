"""An ended connection is freed by reference counting alone: a node freezes
its heap (``server.heap``), and a frozen cycle is freed only by a full pass
over the whole heap, seconds of pause on a node of many connections."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import weakref

import pytest
from aioquic.quic.connection import QuicConnectionState

from client.transfers import Transfers
from codec.messages import FileOffered
from server import quic_fastpath
from server.heap import HeapFreezer
from server.quic_adapter import release_connection, release_handshake_state
from tests.conftest import befriend, eventually, next_of
from tests.server.test_rooms_sfu import video
from tests.udpio.test_mtu_probe import CLIENT, SERVER, Wire, pair


async def test_ended_connections_are_freed_by_refcounting(server, member, tmp_path):
    heap = HeapFreezer(
        asyncio.get_running_loop(), lambda: len(server.connections), check_every_s=0.05
    )
    server.heap = heap
    heap.install()
    try:
        # What a day's session does: friends, chat, a file, a meeting with video.
        alice, bob, carol = [await member(name) for name in ("alice", "bob", "carol")]
        await befriend(alice, bob)
        await alice.chat.send("bob", "hello")
        source = tmp_path / "notes.bin"
        source.write_bytes(os.urandom(300_000))
        sent = await Transfers(alice.session, alice.store, tmp_path / "a").send(
            "bob", source
        )
        assert sent.state == "done"
        offered = await next_of(bob.session, FileOffered)
        got = await Transfers(bob.session, bob.store, tmp_path / "b").download(
            offered.file.file_id
        )
        assert got.state == "done"
        inbox: list[bytes] = []
        room_id = (await alice.session.rooms.create()).room_id
        for m in (bob, carol):
            await m.session.rooms.join(room_id)
        carol.session.rooms.datagram_handler = inbox.append
        track = await alice.session.rooms.publish("camera", 320, 240, 15)
        assert alice.session.rooms.send_datagrams(
            [video(track.track_id, seq) for seq in range(10)], max_queued=100
        )
        await eventually(lambda: len(inbox) >= 10)

        held = [weakref.ref(conn) for conn in server.connections]
        held += [weakref.ref(conn.quic) for conn in server.connections]
        assert len(held) == 6
        gc.freeze()  # as on a node: what lives now is out of the collector's sight
        for m in (alice, bob, carol):
            await m.chat.close()
            await m.session.close()

        await eventually(lambda: all(ref() is None for ref in held), timeout=10.0)
        await eventually(lambda: heap.released == 3)
        assert heap.stuck == 0 and heap.reclaims == 0
        assert heap.snapshot()["gc_released_connections"] == 3
    finally:
        server.heap = None
        heap.uninstall()


async def test_connections_cut_short_are_freed_too(server, member, tmp_path):
    """An upload cut off by its client's end, a session kicked by a second
    login of its account: what they held is freed with them."""
    heap = HeapFreezer(
        asyncio.get_running_loop(), lambda: len(server.connections), check_every_s=0.05
    )
    server.heap = heap
    heap.install()
    try:
        alice, bob = await member("alice"), await member("bob")
        await befriend(alice, bob)
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(32 * 1024 * 1024))
        sending = asyncio.create_task(
            Transfers(alice.session, alice.store, tmp_path / "a").send("bob", source)
        )
        await eventually(lambda: bool(server.files.active), timeout=20.0)
        held = [weakref.ref(conn) for conn in server.connections]
        held += [weakref.ref(conn.quic) for conn in server.connections]
        gc.freeze()
        await alice.session.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await sending
        again = await member("bob", register=False)  # the first bob is kicked
        await eventually(lambda: len(server.connections) == 1)
        await eventually(lambda: all(ref() is None for ref in held), timeout=10.0)
        await eventually(lambda: heap.released == 2)
        assert heap.stuck == 0
        assert not server.files.active
        await again.session.close()
        await eventually(lambda: heap.released == 3)
        assert heap.stuck == 0 and heap.reclaims == 0
    finally:
        server.heap = None
        heap.uninstall()


def test_an_ended_connection_released_does_nothing_more(tmp_path):
    """On two real aioquic connections wired in memory: once the server's has
    ended, :func:`release_connection` leaves it no cycle (freed without the
    collector) and aioquic's own methods, which it leaves, do nothing."""
    client, server_quic = pair(tmp_path)
    client.connect(SERVER, now=0.0)
    wire = Wire(client, server_quic, mtu=1500)
    wire.run(0.2)
    assert server_quic._handshake_confirmed
    release_handshake_state(server_quic)  # the shared frame handler table
    assert quic_fastpath.install(server_quic) is not None  # methods on the instance
    with pytest.raises(AssertionError):
        release_connection(server_quic)  # not while it lives

    client.close()
    wire.run(1.0)
    assert server_quic._state == QuicConnectionState.TERMINATED
    while server_quic.next_event() is not None:
        pass
    release_connection(server_quic)
    assert not [name for name, value in vars(server_quic).items() if callable(value)]
    assert server_quic.get_timer() is None  # so no timer runs it again
    assert server_quic.datagrams_to_send(now=wire.now) == []
    server_quic.receive_datagram(b"\x40" + bytes(40), CLIENT, now=wire.now)
    assert server_quic.next_event() is None

    gone = weakref.ref(server_quic)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del server_quic
        wire.server = None  # type: ignore[assignment]
        assert gone() is None
    finally:
        if enabled:
            gc.enable()
