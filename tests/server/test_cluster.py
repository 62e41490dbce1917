"""Two server nodes (real processes) on one PostgreSQL, one Redis and one shared
blob directory: users on different nodes are friends, chat, see each other's
presence and exchange files; a node that dies is noticed within seconds."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from client import Session
from client.transfers import Transfers
from codec.messages import (
    ChatMessage,
    Delivered,
    FileOffered,
    Kicked,
    PresenceChanged,
)
from tests.conftest import (
    PASSWORD,
    ServerProcess,
    close_member,
    next_of,
    open_member,
    sha256_of,
    start_server_process,
)


def _start_node(
    tmp_path: Path, name: str, db_url: str, redis_url: str
) -> ServerProcess:
    return start_server_process(
        tmp_path / name,
        extra=[
            "--db",
            db_url,
            "--redis",
            redis_url,
            "--node-id",
            name,
            "--blob-dir",
            str(tmp_path / "blobs"),
        ],
    )


@pytest.fixture
async def nodes(tmp_path, postgres, redis_server) -> AsyncIterator[list[ServerProcess]]:
    """Nodes ``a`` and ``b`` of one cluster, started side by side."""
    url = postgres.create_database()
    started = await asyncio.gather(
        asyncio.to_thread(_start_node, tmp_path, "a", url, redis_server.url),
        asyncio.to_thread(_start_node, tmp_path, "b", url, redis_server.url),
    )
    yield list(started)
    for node in started:
        if node.proc.poll() is None:
            node.stop()


async def _befriend_across(a, b) -> None:
    await a.friends.request(b.name)
    await next_of_friend_request(b)
    await b.friends.accept(a.name)


async def next_of_friend_request(member) -> None:
    from codec.messages import FriendRequested

    event = await next_of(member.session, FriendRequested, timeout=10)
    assert event.request.profile.username != member.name


async def test_users_on_two_nodes_chat_and_see_presence(nodes, tmp_path):
    node_a, node_b = nodes
    alice = await open_member(node_a.address, "alice", tmp_path / "h" / "alice")
    bob = await open_member(node_b.address, "bob", tmp_path / "h" / "bob")
    try:
        await _befriend_across(alice, bob)
        online = await next_of(alice.session, PresenceChanged, timeout=10)
        assert (online.username, online.presence) == ("bob", "online")
        listed = await alice.friends.list()
        assert [(f.profile.username, f.presence) for f in listed.friends] == [
            ("bob", "online")
        ]

        sent = await alice.chat.send("bob", "hello from node a")
        assert sent.state == "sent"
        got = await next_of(bob.session, ChatMessage, timeout=10)
        assert (got.sender, got.text, got.seq) == ("alice", "hello from node a", 1)
        await bob.chat.drain()
        delivered = await next_of(alice.session, Delivered, timeout=10)
        assert delivered.up_to_seq == 1

        # Both nodes write the one conversation: its sequence stays one sequence.
        replies = await asyncio.gather(
            bob.chat.send("alice", "hi from node b"),
            alice.chat.send("bob", "and again from a"),
        )
        assert all(r.state == "sent" for r in replies)
        reply = await next_of(alice.session, ChatMessage, timeout=10)
        assert reply.text == "hi from node b"
        assert sorted(r.seq for r in replies) == [2, 3]

        await bob.friends.set_presence("away")
        away = await next_of(alice.session, PresenceChanged, timeout=10)
        assert (away.username, away.presence) == ("bob", "away")
        listed = await alice.friends.list()
        assert [f.presence for f in listed.friends] == ["away"]

        # A second login on the other node ends the first session.
        second = Session(node_a.address)
        await second.connect()
        await second.login("bob", PASSWORD)
        kicked = await next_of(bob.session, Kicked, timeout=10)
        assert kicked.reason == "signed_in_elsewhere"
        await second.close()
        offline = await next_of(alice.session, PresenceChanged, timeout=10)
        while offline.presence != "offline":
            offline = await next_of(alice.session, PresenceChanged, timeout=10)
        assert offline.username == "bob"
    finally:
        await close_member(alice)
        await close_member(bob)


async def test_files_cross_nodes_through_the_shared_blob_directory(nodes, tmp_path):
    node_a, node_b = nodes
    alice = await open_member(node_a.address, "alice", tmp_path / "h" / "alice")
    bob = await open_member(node_b.address, "bob", tmp_path / "h" / "bob")
    carol = await open_member(node_b.address, "carol", tmp_path / "h" / "carol")
    try:
        await _befriend_across(alice, bob)
        await _befriend_across(carol, bob)
        source = tmp_path / "deck.bin"
        source.write_bytes(os.urandom(1_500_000))
        up = await Transfers(alice.session, alice.store, tmp_path / "d-a").send(
            "bob", source
        )
        assert up.state == "done" and not up.instant
        offered = await next_of(bob.session, FileOffered, timeout=10)
        down = await Transfers(bob.session, bob.store, tmp_path / "d-b").download(
            offered.file.file_id
        )
        assert down.state == "done"
        assert sha256_of(tmp_path / "d-b" / "deck.bin") == sha256_of(source)

        copy = tmp_path / "same.bin"
        copy.write_bytes(source.read_bytes())
        again = await Transfers(carol.session, carol.store, tmp_path / "d-c").send(
            "bob", copy
        )
        assert again.instant and again.wire_bytes == 0 and again.state == "done"
    finally:
        for m in (alice, bob, carol):
            await close_member(m)


async def test_a_dead_node_is_noticed_and_its_users_go_offline(nodes, tmp_path):
    node_a, node_b = nodes
    alice = await open_member(node_a.address, "alice", tmp_path / "h" / "alice")
    bob = await open_member(node_b.address, "bob", tmp_path / "h" / "bob")
    try:
        await _befriend_across(alice, bob)
        await next_of(bob.session, PresenceChanged, timeout=10)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        node_a.proc.send_signal(signal.SIGKILL)
        node_a.proc.wait(5)
        event = await next_of(bob.session, PresenceChanged, timeout=15)
        while (event.username, event.presence) != ("alice", "offline"):
            event = await next_of(bob.session, PresenceChanged, timeout=15)
        # The heartbeat expires after 3 s and is checked every second; allow a
        # slow machine twice that.
        assert loop.time() - killed_at < 10
        listed = await bob.friends.list()
        assert [f.presence for f in listed.friends] == ["offline"]
    finally:
        alice.store.close()
        await bob.chat.close()
        await bob.session.close()
        bob.store.close()
