"""Several server nodes sharing what is live through Redis.

In Redis:

- ``quicmeet:users``: a hash, user id -> ``"<node id>\\t<status>"``: which node
  holds each online user's connection (the truth; see the scripts below).
- ``quicmeet:nodes``: the set of node ids; ``quicmeet:node:<id>`` a key each
  node rewrites every :data:`HEARTBEAT` seconds with a :data:`NODE_TTL`: a node
  whose key expired is dead, and the first node to notice removes its users.
- ``quicmeet:rooms``: a hash, room id -> the node it lives on; a node asked
  for a room it does not hold sends the client to that node if it is alive,
  and takes the room over if that node died.
- ``quicmeet:room:<id>``: the room's record (:class:`~server.room_state.RoomRecord`),
  rewritten by its node as it changes. When the node dies it is kept for
  :data:`ADOPT_WINDOW` seconds for the first member who rejoins elsewhere.
- ``quicmeet:presence``: the channel every node hears: users attached,
  detached, changing status, and the users of a node that died. Each node keeps
  a mirror of the other nodes' users from it, so ``locate`` never waits.
- ``quicmeet:to:<node id>``: the node's own channel: events for its users
  (those routed to one node in a row travel as one message) and "your user
  logged in elsewhere".

Everything a node sends goes through one :class:`OrderedWriter` on one
connection, so the other nodes see it in the order it happened here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any, Union

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from codec.messages import EVENTS, Event

from .base import ClusterHandler, ClusterUnavailable
from .redis_writer import OrderedWriter
from .scripts import ADOPT, ATTACH, IF_MINE, REAP, ROOM_CLOSED, ROOM_SAVED

__all__ = ["RedisCluster"]

log = logging.getLogger("quicmeet.cluster")

HEARTBEAT = 1.0
"""Seconds between a node's heartbeats (and its checks for dead nodes)."""
NODE_TTL = 3.0
"""Seconds after its last heartbeat at which a node counts as dead."""
ADOPT_WINDOW = 300.0
"""Seconds a dead node's rooms wait for a member to take them over elsewhere."""
MAX_OUTBOX = 100_000
"""Queued messages beyond which new ones are dropped while Redis is away."""

USERS = "quicmeet:users"
NODES = "quicmeet:nodes"
PRESENCE = "quicmeet:presence"
ROOMS = "quicmeet:rooms"
NODE_PREFIX = "quicmeet:node:"
ROOM_PREFIX = "quicmeet:room:"


def node_key(node_id: str) -> str:
    return f"{NODE_PREFIX}{node_id}"


def room_key(room_id: str) -> str:
    return f"{ROOM_PREFIX}{room_id}"


def node_channel(node_id: str) -> str:
    return f"quicmeet:to:{node_id}"


_encode = msgspec.msgpack.Encoder().encode
_decode_list = msgspec.msgpack.Decoder(list).decode
_decode_event = msgspec.msgpack.Decoder(Union[EVENTS]).decode  # type: ignore[arg-type]  # noqa: UP007


class RedisCluster:
    """One node's membership of a cluster whose live state is in Redis."""

    def __init__(self, url: str, node_id: str | None = None) -> None:
        self.node_id = node_id or secrets.token_hex(6)
        self._url = url
        self._redis = aioredis.from_url(url)
        self._remote: dict[int, tuple[str, str]] = {}
        """Users on other nodes: user id -> (node id, status)."""
        self._local: dict[int, tuple[int, str]] = {}
        """Users on this node: user id -> (session id, status), to announce them
        again to a Redis that lost them (restarted without persistence)."""
        self._writer = OrderedWriter(
            self._redis, MAX_OUTBOX, HEARTBEAT, before_send=self._flush_events
        )
        self._events_to = ""
        self._events: list[int | bytes] = []
        """Events for users of node ``_events_to`` gathered since the writer
        last sent: user id, event, user id, event..., published as one."""
        self._handler: ClusterHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._address: tuple[str, int] = ("", 0)
        self.stats = {"routed_out": 0, "routed_in": 0, "reaped": 0}

    # -- life -----------------------------------------------------------------

    async def start(self, address: tuple[str, int], handler: ClusterHandler) -> None:
        self._handler = handler
        self._address = address
        try:
            await self._redis.ping()
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(PRESENCE, node_channel(self.node_id))
            # Leftovers of an earlier run under this node id are gone.
            await self._reap(self.node_id)
            await self._heartbeat()
            await self._load_mirror()
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable(f"cannot reach Redis: {exc}") from None
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(pubsub)),
            loop.create_task(self._writer.run()),
            loop.create_task(self._watch()),
        ]
        log.info("node %s joined the cluster", self.node_id)

    async def stop(self) -> None:
        """Flush what is queued, then leave: this node's users go offline."""
        self._flush_events()
        for _ in range(50):
            if not self._writer.pending:
                break
            await asyncio.sleep(0.02)
        # redis-py may turn a cancellation inside a command into an error of
        # its own, which the loops take for Redis trouble: they also stop
        # when they see this flag.
        self._stopping = True
        self._writer.stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._redis.delete(node_key(self.node_id))
            await self._reap(self.node_id)
        except (RedisError, OSError) as exc:
            log.warning("could not leave the cluster cleanly: %s", exc)
        await self._redis.aclose()

    # -- what the node tells the others ----------------------------------------

    def user_attached(self, user_id: int, session_id: int) -> None:
        self._remote.pop(user_id, None)
        self._local[user_id] = (session_id, "online")
        self._announce(user_id, session_id, "online")

    def _announce(self, user_id: int, session_id: int, status: str) -> None:
        message = _encode(["attach", user_id, self.node_id, status])
        value = f"{self.node_id}\t{status}"
        self._queue(
            ("EVAL", ATTACH, 2, USERS, PRESENCE, user_id, value, message),
            lambda previous: self._taken_from(user_id, session_id, previous),
        )

    def user_detached(self, user_id: int) -> None:
        self._local.pop(user_id, None)
        message = _encode(["detach", user_id, self.node_id])
        self._if_mine(user_id, "", message)

    def set_status(self, user_id: int, status: str) -> None:
        if user_id in self._local:
            self._local[user_id] = (self._local[user_id][0], status)
        message = _encode(["status", user_id, self.node_id, status])
        self._if_mine(user_id, f"{self.node_id}\t{status}", message)

    def _if_mine(self, user_id: int, value: str, message: bytes) -> None:
        mine = f"{self.node_id}\t"
        self._queue(
            ("EVAL", IF_MINE, 2, USERS, PRESENCE, user_id, mine, value, message)
        )

    def send_event(self, node_id: str, user_id: int, event: Event) -> None:
        self.stats["routed_out"] += 1
        if node_id != self._events_to:
            self._flush_events()
            self._events_to = node_id
        self._events += (user_id, _encode(event))
        self._writer.wake()

    def _flush_events(self) -> None:
        """Queue the events gathered for one node as one message to it."""
        if self._events:
            payload = _encode(["events", self._events])
            self._events = []
            self._writer.queue(("PUBLISH", node_channel(self._events_to), payload))

    def locate(self, user_id: int) -> tuple[str, str] | None:
        return self._remote.get(user_id)

    def room_opened(self, room_id: str) -> None:
        self._queue(("HSET", ROOMS, room_id, self.node_id))

    def room_closed(self, room_id: str) -> None:
        self._queue(
            ("EVAL", ROOM_CLOSED, 2, ROOMS, room_key(room_id), room_id, self.node_id)
        )

    def room_saved(self, room_id: str, record: bytes) -> None:
        key = room_key(room_id)
        self._queue(("EVAL", ROOM_SAVED, 2, ROOMS, key, room_id, self.node_id, record))

    async def adopt_room(self, room_id: str) -> bytes | None:
        try:
            record = await self._redis.eval(
                ADOPT, 2, ROOMS, room_key(room_id), room_id, self.node_id, NODE_PREFIX
            )
        except (RedisError, OSError) as exc:
            log.warning("cannot take room %s over: %s", room_id, exc)
            return None
        return record

    async def flushed(self, timeout: float) -> bool:
        self._flush_events()
        return await self._writer.flushed(timeout)

    async def room_node(self, room_id: str) -> str | None:
        try:
            node = await self._redis.hget(ROOMS, room_id)
            if node is None or node.decode() == self.node_id:
                return None
            info = await self._redis.get(node_key(node.decode()))
        except (RedisError, OSError) as exc:
            log.warning("cannot look up room %s in Redis: %s", room_id, exc)
            return None
        if info is None:
            return None  # that node is dead, and its rooms with it
        address = json.loads(info)
        return f"{address['host']}:{address['port']}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "cluster_node": self.node_id,
            "cluster_remote_users": len(self._remote),
            "cluster_dropped": self._writer.dropped,
            **{f"cluster_{name}": value for name, value in self.stats.items()},
        }

    def _queue(self, command: tuple[Any, ...], on_reply: Any = None) -> None:
        """Queue ``command`` after the events gathered so far (order is kept)."""
        self._flush_events()
        self._writer.queue(command, on_reply)

    def _taken_from(self, user_id: int, session_id: int, previous: Any) -> None:
        """Reply to an attach: ``previous`` is where the user was until this
        login (None: nowhere); another node is told to end that session."""
        if not isinstance(previous, bytes):
            return
        node = previous.decode().split("\t", 1)[0]
        if node != self.node_id:
            payload = _encode(["taken", user_id, session_id])
            self._queue(("PUBLISH", node_channel(node), payload))

    # -- the reader -----------------------------------------------------------------

    async def _load_mirror(self) -> None:
        entries = await self._redis.hgetall(USERS)
        self._remote.clear()
        for key, value in entries.items():
            node, _, status = value.decode().partition("\t")
            if node != self.node_id:
                self._remote[int(key)] = (node, status or "online")

    async def _read(self, pubsub: Any) -> None:
        while not self._stopping:
            try:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEARTBEAT
                )
            except (RedisError, OSError) as exc:
                log.warning("Redis subscription lost (resubscribing): %s", exc)
                await asyncio.sleep(HEARTBEAT)
                try:
                    await pubsub.subscribe(PRESENCE, node_channel(self.node_id))
                    # Redis may have restarted empty: say again who is here.
                    for user_id, (session_id, status) in list(self._local.items()):
                        self._announce(user_id, session_id, status)
                    await self._load_mirror()
                except (RedisError, OSError):
                    pass
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                self._receive(message["channel"].decode(), message["data"])
            except Exception:
                log.exception("bad message from the cluster")

    def _receive(self, channel: str, data: bytes) -> None:
        assert self._handler is not None
        fields = _decode_list(data)
        kind = fields[0]
        if channel != PRESENCE:
            if kind == "events":
                batch = fields[1]
                self.stats["routed_in"] += len(batch) // 2
                for i in range(0, len(batch), 2):
                    self._handler.event_for(int(batch[i]), _decode_event(batch[i + 1]))
            elif kind == "taken":
                self._handler.session_taken(int(fields[1]), int(fields[2]))
            return
        if kind == "down":
            _, node, users = fields
            gone = {
                int(u) for u in users if self._remote.get(int(u), (node,))[0] == node
            }
            for user_id in list(self._remote):
                if self._remote[user_id][0] == node:
                    gone.add(user_id)
                    del self._remote[user_id]
            if gone:
                now = int(time.time() * 1000)
                self._handler.users_gone(dict.fromkeys(gone, now))
            return
        user_id, node = int(fields[1]), fields[2]
        if node == self.node_id:
            return
        if kind in ("attach", "status"):
            self._remote[user_id] = (node, fields[3])
        elif kind == "detach" and self._remote.get(user_id, ("",))[0] == node:
            del self._remote[user_id]

    # -- heartbeat and dead nodes -----------------------------------------------------

    async def _heartbeat(self) -> None:
        info = json.dumps({"host": self._address[0], "port": self._address[1]})
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(node_key(self.node_id), info, px=int(NODE_TTL * 1000))
        pipe.sadd(NODES, self.node_id)
        await pipe.execute()

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._heartbeat()
                nodes = [n.decode() for n in await self._redis.smembers(NODES)]
                others = [n for n in nodes if n != self.node_id]
                if not others:
                    continue
                alive = await self._redis.exists(*[node_key(n) for n in others])
                if alive == len(others):
                    continue
                for node in others:
                    if not await self._redis.exists(node_key(node)):
                        log.warning("node %s stopped its heartbeat: dead", node)
                        await self._reap(node)
            except (RedisError, OSError) as exc:
                log.warning("Redis heartbeat failed: %s", exc)

    async def _reap(self, node: str) -> None:
        """Remove ``node`` and its users, and tell every node they are gone."""
        gone = await self._redis.eval(
            REAP,
            3,
            USERS,
            NODES,
            ROOMS,
            f"{node}\t",
            node,
            ROOM_PREFIX,
            int(ADOPT_WINDOW * 1000),
        )
        self.stats["reaped"] += len(gone)
        users = [int(u) for u in gone]
        await self._redis.publish(PRESENCE, _encode(["down", node, users]))
