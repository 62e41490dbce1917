"""Two server nodes (real processes) on one PostgreSQL, one Redis and one shared
blob directory: users on different nodes are friends, chat, see each other's
presence and exchange files; a node that dies is noticed within seconds, and
its users resume on the other node without losing or repeating a message; a
room on one node is joined through the other; a meeting whose node dies or
stops goes on on the other; SIGTERM drains a node."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from client import ServerError, Session
from client.events import Reconnected
from client.media import Call, SyntheticSource
from client.transfers import Transfers
from codec import ErrorCode
from codec.messages import (
    ChatMessage,
    Delivered,
    FileOffered,
    FriendAccepted,
    FriendRequested,
    Kicked,
    PresenceChanged,
)
from server import cli
from tests.conftest import (
    PASSWORD,
    ServerProcess,
    close_member,
    eventually,
    next_of,
    open_member,
    sha256_of,
    start_server_process,
)

MiB = 1024 * 1024


class TwoNodes:
    """Nodes ``a`` and ``b`` of one cluster; :meth:`ensure` restarts a node a
    test killed (same node id, data and certificate; a new port)."""

    def __init__(self, root: Path, db_url: str, redis_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.redis_url = redis_url
        self.nodes: dict[str, ServerProcess] = {}

    def _start(self, name: str) -> ServerProcess:
        return start_server_process(
            self.root / name,
            extra=[
                "--db",
                self.db_url,
                "--redis",
                self.redis_url,
                "--node-id",
                name,
                "--blob-dir",
                str(self.root / "blobs"),
            ],
        )

    async def ensure(self) -> list[ServerProcess]:
        dead = [
            name
            for name in "ab"
            if name not in self.nodes or self.nodes[name].proc.poll() is not None
        ]
        started = await asyncio.gather(
            *(asyncio.to_thread(self._start, name) for name in dead)
        )
        self.nodes.update(zip(dead, started, strict=True))
        return [self.nodes["a"], self.nodes["b"]]

    def stop(self) -> None:
        """SIGTERM both (they drain at once: nobody is left in a meeting); a
        node that has not stopped after 15 s is killed, so none outlives the
        tests even when one failed mid-meeting."""
        running = [n for n in self.nodes.values() if n.proc.poll() is None]
        for node in running:
            node.proc.send_signal(signal.SIGTERM)
        for node in running:
            try:
                node.proc.wait(15)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, postgres, redis_server) -> Iterator[TwoNodes]:
    """One cluster for the module (starting nodes is the slow part); each test
    uses users of its own."""
    cluster = TwoNodes(
        tmp_path_factory.mktemp("cluster"), postgres.create_database(), redis_server.url
    )
    yield cluster
    cluster.stop()


@pytest.fixture
async def nodes(two_nodes) -> list[ServerProcess]:
    """Nodes ``a`` and ``b``, both running."""
    return await two_nodes.ensure()


async def _befriend_across(a, b) -> None:
    """Make ``a`` and ``b`` friends, returning once both have heard of it (a
    friendship made on another node reaches a node with its event)."""
    await a.friends.request(b.name)
    await next_of(b.session, FriendRequested, timeout=10)
    await b.friends.accept(a.name)
    await next_of(a.session, FriendAccepted, timeout=10)


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
        assert sent.state in ("sent", "delivered")
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
        assert all(r.state in ("sent", "delivered") for r in replies)
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
    alice = await open_member(node_a.address, "ann", tmp_path / "h" / "ann")
    bob = await open_member(node_b.address, "ben", tmp_path / "h" / "ben")
    carol = await open_member(node_b.address, "cat", tmp_path / "h" / "cat")
    try:
        await _befriend_across(alice, bob)
        await _befriend_across(carol, bob)
        source = tmp_path / "deck.bin"
        source.write_bytes(os.urandom(1_500_000))
        up = await Transfers(alice.session, alice.store, tmp_path / "d-a").send(
            "ben", source
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
            "ben", copy
        )
        assert again.instant and again.wire_bytes == 0 and again.state == "done"
    finally:
        for m in (alice, bob, carol):
            await close_member(m)


async def test_a_node_killed_mid_chat_its_users_resume_on_the_other(nodes, tmp_path):
    node_a, node_b = nodes
    both = f"{node_a.address},{node_b.address}"
    alice = await open_member(both, "fay", tmp_path / "h" / "fay", idle_timeout=2.0)
    bob = await open_member(node_b.address, "gus", tmp_path / "h" / "gus")
    stays = await open_member(node_a.address, "dan", tmp_path / "h" / "dan")
    offers: list[FileOffered] = []  # kept aside: next_of skips other events
    bob.session.add_event_hook(
        lambda e: offers.append(e) if isinstance(e, FileOffered) else None
    )
    sent: list[str] = []
    stop = asyncio.Event()

    async def chatter() -> None:
        n = 0
        while not stop.is_set():
            text = f"line {n}"
            await alice.chat.send("gus", text)  # sent, or pending while away
            sent.append(text)
            n += 1
            await asyncio.sleep(0.05)

    try:
        await _befriend_across(alice, bob)
        await _befriend_across(stays, bob)
        talking = asyncio.create_task(chatter())
        # An upload under way too: it goes on through node b from the partial
        # file node a left in the shared blob directory.
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(6 * MiB))
        uploads = Transfers(alice.session, alice.store, tmp_path / "d-fay")
        halfway = asyncio.Event()
        uploads.on_progress = lambda p: (
            halfway.set() if not p.checking and p.done >= 3 * MiB else None
        )
        uploading = asyncio.create_task(uploads.send("gus", source))
        await halfway.wait()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        node_a.proc.send_signal(signal.SIGKILL)
        node_a.proc.wait(5)
        back = await next_of(alice.session, Reconnected, timeout=20)
        # Silence for the client's 2 s idle timeout, then one attempt at node b;
        # the goal is 5 s, a slow machine gets twice that.
        assert loop.time() - killed_at < 10, back
        assert (alice.session.host, alice.session.port) == (node_b.host, node_b.port)
        # A user who knew only node a is offline for friends elsewhere once the
        # node's heartbeat expires (3 s, checked every second; a slow machine
        # gets twice that); one who moved to node b is not.
        event = await next_of(bob.session, PresenceChanged, timeout=15)
        while (event.username, event.presence) != ("dan", "offline"):
            event = await next_of(bob.session, PresenceChanged, timeout=15)
        assert loop.time() - killed_at < 10
        listed = await bob.friends.list()
        assert {f.profile.username: f.presence for f in listed.friends} == {
            "dan": "offline",
            "fay": "online",
        }
        stop.set()
        await talking
        while await alice.chat.flush():
            pass
        assert not await alice.store.run(alice.store.pending)

        async def bob_has_all() -> bool:
            await bob.chat.drain()
            got = await bob.chat.history("fay", limit=10**6)
            return len(got) >= len(sent)

        deadline = loop.time() + 15
        while not await bob_has_all():
            assert loop.time() < deadline, "messages missing on gus's side"
            await asyncio.sleep(0.1)
        texts = [m.text for m in await bob.chat.history("fay", limit=10**6)]
        assert texts == sent, "every acknowledged message once, in order"

        upload = await asyncio.wait_for(uploading, 60)
        assert upload.state == "done"
        # Started over, it would have sent at least 3 + 6 MiB; resumed, at most
        # what was in flight (QUIC flow control: about 1 MiB) more than 6.
        assert upload.wire_bytes < 8 * MiB, "resumed, not started over"
        await eventually(lambda: offers, timeout=10)
        got = await Transfers(bob.session, bob.store, tmp_path / "d-gus").download(
            offers[0].file.file_id
        )
        assert got.state == "done"
        assert sha256_of(tmp_path / "d-gus" / "big.bin") == sha256_of(source)
    finally:
        stop.set()
        for m in (alice, bob, stays):
            await close_member(m)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://127.0.0.1:1/0", "cannot reach Redis"),
        ("http://127.0.0.1:6379", "unsupported Redis URL scheme 'http'"),
    ],
)
def test_unreachable_or_odd_redis_stops_the_node_clearly(tmp_path, url, reason):
    with pytest.raises(SystemExit) as stopped:
        cli.main(
            [
                "--port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
                "--cert",
                str(tmp_path / "cert.pem"),
                "--key",
                str(tmp_path / "key.pem"),
                "--redis",
                url,
                "--log-level",
                "error",
            ]
        )
    assert reason in str(stopped.value.code)


async def test_a_room_on_one_node_is_joined_through_the_other(
    nodes, tmp_path, redis_server
):
    node_a, node_b = nodes
    host = await open_member(node_a.address, "hal", tmp_path / "h" / "hal")
    guest = await open_member(node_b.address, "ivy", tmp_path / "h" / "ivy")
    try:
        await _befriend_across(host, guest)
        room = await host.session.rooms.create()
        # Where the room lives is in Redis before its id goes out (a join
        # through node b right after the reply once found no room).
        client = redis.Redis(port=redis_server.port)
        try:
            assert client.hget("quicmeet:rooms", room.room_id) is not None
        finally:
            client.close()
        state = await guest.session.rooms.join(room.room_id)
        assert (guest.session.host, guest.session.port) == (node_a.host, node_a.port)
        assert sorted(m.username for m in state.members) == ["hal", "ivy"]
        # The session moved whole: chat reaches the guest on its new node.
        await host.chat.send("ivy", "welcome in")
        got = await next_of(guest.session, ChatMessage, timeout=10)
        assert got.text == "welcome in"

        # A room that does not exist anywhere is still just not found.
        with pytest.raises(ServerError) as missing:
            await host.session.rooms.join("zzz-zzz-zzzz")
        assert missing.value.code == ErrorCode.NOT_FOUND
    finally:
        await close_member(host)
        await close_member(guest)


async def test_redis_restarted_empty_the_nodes_tell_it_again(
    nodes, tmp_path, redis_server
):
    node_a, node_b = nodes
    mia = await open_member(node_a.address, "mia", tmp_path / "h" / "mia")
    ned = await open_member(node_b.address, "ned", tmp_path / "h" / "ned")
    try:
        await _befriend_across(mia, ned)
        port = redis_server.port
        redis_server.stop()  # no persistence: it comes back empty
        redis_server.start(port)
        client = redis.Redis(port=port)
        try:
            await eventually(
                lambda: len(client.hgetall("quicmeet:users")) >= 2, timeout=20
            )
        finally:
            client.close()
        await mia.chat.send("ned", "still routed")
        got = await next_of(ned.session, ChatMessage, timeout=10)
        assert got.text == "still routed"
    finally:
        await close_member(mia)
        await close_member(ned)


async def test_sigterm_drains_a_node_meetings_end_before_it_stops(nodes, tmp_path):
    node_a, node_b = nodes
    both = f"{node_a.address},{node_b.address}"
    host = await open_member(node_a.address, "jay", tmp_path / "h" / "jay")
    guest = await open_member(node_a.address, "kim", tmp_path / "h" / "kim")
    idle = await open_member(both, "lee", tmp_path / "h" / "lee")
    try:
        room = await host.session.rooms.create()
        await guest.session.rooms.join(room.room_id)
        node_a.proc.send_signal(signal.SIGTERM)
        # Not in a meeting: sent on to node b at once (an attempt that lands on
        # node a again while it drains is sent on once more).
        on_b = (node_b.host, node_b.port)
        await eventually(
            lambda: (
                (idle.session.host, idle.session.port) == on_b
                and idle.session.logged_in
            ),
            timeout=20,
        )
        # The meeting goes on, but nothing new starts here.
        assert node_a.proc.poll() is None
        with pytest.raises(ServerError) as refused:
            await host.session.rooms.create()
        assert refused.value.code == ErrorCode.SHUTTING_DOWN
        await guest.session.rooms.leave()
        await host.session.rooms.leave()
        assert await asyncio.to_thread(node_a.proc.wait, 15) == 0
    finally:
        for m in (host, guest, idle):
            await close_member(m)


async def test_sigterm_a_meeting_past_the_drain_limit_moves_to_another_node(
    two_nodes, nodes, tmp_path
):
    node_b = nodes[1]
    node_c = await asyncio.to_thread(
        start_server_process,
        two_nodes.root / "c",
        extra=[
            "--db",
            two_nodes.db_url,
            "--redis",
            two_nodes.redis_url,
            "--node-id",
            "c",
            "--blob-dir",
            str(two_nodes.root / "blobs"),
            "--drain-timeout",
            "1",
        ],
    )
    both = f"{node_c.address},{node_b.address}"
    host = await open_member(both, "oda", tmp_path / "h" / "oda")
    guest = await open_member(both, "pia", tmp_path / "h" / "pia")
    try:
        room = await host.session.rooms.create(password="c-room")
        await guest.session.rooms.join(room.room_id, "c-room")
        node_c.proc.send_signal(signal.SIGTERM)
        # Past the limit the node stops anyway, and the meeting moves on with
        # its members, as it was (the host is still the host).
        assert await asyncio.to_thread(node_c.proc.wait, 20) == 0
        await _back_in(room.room_id, [host, guest], node_b, "oda")
    finally:
        for m in (host, guest):
            await close_member(m)
        if node_c.proc.poll() is None:
            node_c.proc.kill()
            node_c.proc.wait(5)


async def _back_in(room_id: str, members: list, node: ServerProcess, host: str) -> None:
    """Wait until every one of ``members`` is on ``node``, in ``room_id`` with
    all of the others, and ``host`` hosts it."""
    names = sorted(m.name for m in members)
    on_node = (node.host, node.port)

    def settled() -> bool:
        for m in members:
            state = m.session.rooms.state
            if (m.session.host, m.session.port) != on_node or state is None:
                return False
            if state.room_id != room_id or state.host != host:
                return False
            if sorted(x.username for x in state.members) != names:
                return False
        return True

    try:
        await eventually(settled, timeout=20)
    except AssertionError:
        seen = [(m.name, m.session.port, m.session.rooms.state) for m in members]
        raise AssertionError(f"not back in {room_id} on {on_node}: {seen}") from None


async def test_a_node_killed_mid_meeting_the_meeting_goes_on_on_the_other(
    nodes, tmp_path, redis_server
):
    node_a, node_b = nodes
    both = f"{node_a.address},{node_b.address}"
    host = await open_member(both, "quin", tmp_path / "h" / "quin", idle_timeout=2.0)
    guest = await open_member(both, "rosa", tmp_path / "h" / "rosa", idle_timeout=2.0)
    stranger = await open_member(node_b.address, "sam", tmp_path / "h" / "sam")
    frames: list[int] = []
    calls: list[Call] = []
    try:
        room = await host.session.rooms.create(password="secret room")
        await guest.session.rooms.join(room.room_id, "secret room")
        await host.session.rooms.lock()
        publisher = Call(host.session)
        viewer = Call(guest.session, [lambda track, frame: frames.append(1)])
        calls += [publisher, viewer]
        for call in calls:
            call.start()
        await publisher.publish_video(SyntheticSource(160, 120, 15.0))
        await eventually(lambda: len(frames) >= 10, timeout=20)

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        node_a.proc.send_signal(signal.SIGKILL)
        node_a.proc.wait(5)
        await _back_in(room.room_id, [host, guest], node_b, "quin")
        # Back within the 5 s goal (a slow machine gets twice that).
        assert loop.time() - killed_at < 10
        # The host's video goes on through node b: the client publishes it
        # again when its track is no longer in the room.
        seen = len(frames)
        await eventually(lambda: len(frames) >= seen + 10, timeout=20)
        client = redis.Redis(port=redis_server.port)
        try:
            assert client.hget("quicmeet:rooms", room.room_id) == b"b"
        finally:
            client.close()
        # The room is still locked (and has its password) on its new node.
        with pytest.raises(ServerError) as locked:
            await stranger.session.rooms.join(room.room_id, "secret room")
        assert locked.value.code == ErrorCode.FORBIDDEN
        await host.session.rooms.lock(False)
        with pytest.raises(ServerError) as wrong:
            await stranger.session.rooms.join(room.room_id, "a guess")
        assert wrong.value.code == ErrorCode.FORBIDDEN
        state = await stranger.session.rooms.join(room.room_id, "secret room")
        assert len(state.members) == 3
    finally:
        for call in calls:
            await call.close()
        for m in (host, guest, stranger):
            await close_member(m)
