"""One node's writes to Redis: in the order queued, without waiting.

A node's presence changes and routed events must reach the other nodes in the
order they happened here, so they share one connection. Waiting for each
batch's replies before sending the next (as a pipeline does) made every
message queued meanwhile wait a Redis round trip and a turn of the node's
loop; here commands go out as soon as they are queued, and a reader of the
connection's own takes the replies in order and hands each to its callback.

When the connection fails, what was sent without a reply is sent again, ahead
of what was queued after it (a command may so run twice: the nodes' messages
are made to be idempotent where that matters; a chat message routed twice is
dropped by the recipient, who has its seq).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

__all__ = ["OrderedWriter"]

log = logging.getLogger("quicmeet.cluster")

Command = tuple[Any, ...]
"""A Redis command and its arguments, as ``redis-py`` packs them."""
OnReply = Callable[[Any], None]
"""Called with a command's reply (a :class:`ResponseError` when Redis refused it)."""


class OrderedWriter:
    """Sends queued commands on one connection of its own, in order."""

    def __init__(
        self,
        redis: aioredis.Redis,
        max_queued: int,
        retry_delay: float,
        before_send: Callable[[], None],
    ) -> None:
        """``before_send`` is called each time the writer is about to send what
        is queued: the last chance to queue what the caller gathered meanwhile."""
        self._redis = redis
        self._max_queued = max_queued
        self._retry_delay = retry_delay
        self._before_send = before_send
        self._outbox: deque[tuple[Command, OnReply | None]] = deque()
        self._unanswered: deque[tuple[Command, OnReply | None]] = deque()
        self._wake = asyncio.Event()
        self._sent = asyncio.Event()
        self._broken = False
        self.queued = 0
        """Commands ever queued (not counting those dropped)."""
        self.sent = 0
        """Commands written to Redis (again after a reconnection)."""
        self.answered = 0
        """Commands whose reply came back."""
        self.dropped = 0
        """Commands dropped because :data:`max_queued` were waiting."""
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.stopping = False
        """Set before cancelling :meth:`run`, which then ends even when
        redis-py turned the cancellation into an error of its own."""

    @property
    def pending(self) -> int:
        """Commands queued or sent whose reply has not come back yet."""
        return len(self._outbox) + len(self._unanswered)

    def queue(self, command: Command, on_reply: OnReply | None = None) -> None:
        """Send ``command`` after everything queued before it."""
        if self.pending >= self._max_queued:
            self.dropped += 1
            return
        self._outbox.append((command, on_reply))
        self.queued += 1
        self._wake.set()

    def wake(self) -> None:
        """Have ``before_send`` called soon (the caller gathered something)."""
        self._wake.set()

    async def flushed(self, timeout: float) -> bool:
        """Wait until every command queued so far has been answered; False
        after ``timeout`` seconds."""
        target = self.queued
        if self.answered >= target:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((target, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Write until cancelled, reconnecting after a failure."""
        while not self.stopping:
            try:
                connection = await self._redis.connection_pool.get_connection()
            except (RedisError, OSError) as exc:
                log.warning("Redis write connection failed (will retry): %s", exc)
                await asyncio.sleep(self._retry_delay)
                continue
            reader = asyncio.get_running_loop().create_task(self._read(connection))
            try:
                await self._send(connection)
            except Exception as exc:
                # Not only RedisError: the reader tears the connection down
                # when a read fails, under a send in progress. The writer must
                # outlive anything that happens to one connection.
                log.warning("Redis write failed (will retry): %r", exc)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                await connection.disconnect()
                await self._redis.connection_pool.release(connection)
            # Unanswered commands go out again first, in their order.
            self._outbox.extendleft(reversed(self._unanswered))
            self._unanswered.clear()
            self._broken = False
            self._wake.set()
            await asyncio.sleep(self._retry_delay)

    async def _send(self, connection: Any) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._broken:
                return
            self._before_send()
            if not self._outbox:
                continue
            batch = list(self._outbox)
            self._outbox.clear()
            self._unanswered.extend(batch)
            self._sent.set()
            packed = connection.pack_commands([command for command, _ in batch])
            await connection.send_packed_command(packed, check_health=False)
            self.sent += len(batch)

    async def _read(self, connection: Any) -> None:
        try:
            while True:
                if not self._unanswered:
                    self._sent.clear()
                    await self._sent.wait()
                    continue
                try:
                    reply = await connection.read_response()
                except ResponseError as exc:
                    reply = exc
                command, on_reply = self._unanswered.popleft()
                self.answered += 1
                if isinstance(reply, ResponseError):
                    log.warning("Redis refused %s: %s", command[0], reply)
                elif on_reply is not None:
                    try:
                        on_reply(reply)
                    except Exception:
                        log.exception("handling a Redis reply failed")
                if self._flush_waiters:
                    self._wake_flushers()
        except (RedisError, OSError) as exc:
            log.warning("Redis write connection lost: %s", exc)
            self._broken = True
            self._wake.set()

    def _wake_flushers(self) -> None:
        waiting, self._flush_waiters = self._flush_waiters, []
        for target, waiter in waiting:
            if target > self.answered:
                self._flush_waiters.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)
