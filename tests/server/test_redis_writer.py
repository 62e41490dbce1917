"""A node's writes to Redis (a real server, private to this module): sent in
order without waiting for earlier replies, sent again after Redis restarts,
and the events routed to one node in a row published as one message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import pytest
import redis.asyncio as aioredis

from codec.messages import ChatMessage, Event, TypingChanged
from server.cluster.redis_cluster import RedisCluster, node_channel
from server.cluster.redis_writer import OrderedWriter
from tests.conftest import eventually
from tests.stores import RedisServer


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


class Recorder:
    """A node's handler that notes what the cluster hands it."""

    def __init__(self) -> None:
        self.events: list[tuple[int, Event]] = []

    def event_for(self, user_id: int, event: Event) -> None:
        self.events.append((user_id, event))

    def session_taken(self, user_id: int, session_id: int) -> None:
        return None

    def users_gone(self, users: dict[int, int]) -> None:
        return None


TYPING = TypingChanged(username="ann", typing=True)


def _message(seq: int) -> ChatMessage:
    return ChatMessage(sender="ann", seq=seq, client_id=f"c{seq}", text="hi", sent_ms=1)


async def test_commands_go_out_while_an_earlier_reply_is_awaited(own_redis):
    client = aioredis.from_url(own_redis.url)
    writer = OrderedWriter(client, 1000, 0.1, before_send=lambda: None)
    task = asyncio.get_running_loop().create_task(writer.run())
    replies: list[object] = []
    try:
        # BLPOP holds the writer's connection for a second in Redis: a writer
        # that waited for each reply would send nothing more meanwhile.
        writer.queue(("BLPOP", "writer:nothing", 1), replies.append)
        await eventually(lambda: writer.sent == 1, timeout=10)
        for i in range(100):
            writer.queue(("RPUSH", "writer:order", i), replies.append)
            await asyncio.sleep(0)
        await eventually(lambda: writer.sent == 101, timeout=10)
        assert writer.answered == 0
        assert await writer.flushed(10)
        assert replies == [None, *range(1, 101)]
        assert await client.lrange("writer:order", 0, -1) == [
            str(i).encode() for i in range(100)
        ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_unanswered_commands_are_sent_again_after_redis_restarts():
    server = RedisServer()
    server.start()
    client = aioredis.from_url(server.url)
    writer = OrderedWriter(client, 1000, 0.1, before_send=lambda: None)
    task = asyncio.get_running_loop().create_task(writer.run())
    try:
        writer.queue(("BLPOP", "writer:nothing", 2))
        await eventually(lambda: writer.sent == 1, timeout=10)
        server.stop()  # no persistence: it comes back empty
        writer.queue(("RPUSH", "writer:after", "kept"))
        server.start(server.port)
        assert await writer.flushed(20)
        assert await client.lrange("writer:after", 0, -1) == [b"kept"]
        assert writer.sent >= 3  # both again on the new connection
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        server.stop()


async def test_events_routed_to_one_node_in_a_row_travel_as_one_message(own_redis):
    sender, receiver = RedisCluster(own_redis.url), RedisCluster(own_redis.url)
    recorder = Recorder()
    await sender.start(("127.0.0.1", 1), Recorder())
    await receiver.start(("127.0.0.1", 2), recorder)
    watcher = aioredis.from_url(own_redis.url).pubsub()
    await watcher.subscribe(node_channel(receiver.node_id))
    assert (await watcher.get_message(timeout=5))["type"] == "subscribe"
    try:
        for seq in range(1, 51):
            sender.send_event(receiver.node_id, 7, _message(seq))
        sender.send_event("elsewhere", 8, _message(1))
        sender.send_event(receiver.node_id, 9, TYPING)
        assert await sender.flushed(10)
        await eventually(lambda: len(recorder.events) == 51, timeout=10)
        assert recorder.events[:50] == [(7, _message(seq)) for seq in range(1, 51)]
        assert recorder.events[50] == (9, TYPING)
        published = []
        while (got := await watcher.get_message(True, timeout=1)) is not None:
            published.append(msgspec.msgpack.decode(got["data"]))
        assert [(kind, len(batch) // 2) for kind, batch in published] == [
            ("events", 50),
            ("events", 1),
        ]
        assert receiver.snapshot()["cluster_routed_in"] == 51
    finally:
        await watcher.aclose()
        await sender.stop()
        await receiver.stop()
