"""The chat store's own connection to a database shared by server nodes
(PostgreSQL), driven from the event loop.

A batch of a shared database is two round trips
(:func:`~server.chat_writes.shared_read_query`,
:func:`~server.chat_writes.shared_write_query`). Sent from the database
thread, each ended with a wait for the GIL, which the busy event loop holds
for up to the interpreter's switch interval, and the batch went to the thread
and back through an executor. Here the loop itself waits for PostgreSQL's
socket, as it waits for the QUIC socket, and reads the reply when it is
there. The connection is the store's own (the database thread keeps its
own for everything else).

Only the simple query protocol takes several statements in one string, so
the parameters are bound in the client: each becomes a literal in the query
text (:func:`bind`). psycopg's client-side cursor does the same, but it
parses the whole query string for its placeholders first, in Python, and a
batch's query is too long for its cache of parsed queries. In a profile of
a node at 1,000 messages a second that parse was the largest single item
(a fifth of the node's samples; about 1 ms of CPU for a batch of 16
messages and 16 receipts, ``bench/cpu_costs.py``, against 0.1 ms here).
Here the query builder's placeholders are filled
in one ``%`` and each value is quoted by psycopg's own adapters for the
connection; a non-negative int is written as its digits.

psycopg is the "scale" extra: it is imported only when a shared database is
in use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import peewee

if TYPE_CHECKING:
    import psycopg
    from psycopg.adapt import Transformer

__all__ = ["DatabaseTimeout", "SharedChatDatabase", "bind", "is_disk_full"]

DISK_FULL = "53100"
"""PostgreSQL's SQLSTATE for a full disk."""
CONNECT_TIMEOUT_S = 5
"""How long opening the connection may take (unless the URL says)."""
ROUND_TRIP_TIMEOUT_S = 10.0
"""How long one round trip may take: a database that stops answering (a
cut network, a lock held elsewhere) fails the batch with a clear error and
the connection is dropped, instead of holding every later message."""


INT8_MAX = 2**63 - 1
"""The largest int :func:`bind` writes as its digits (PostgreSQL's bigint)."""


def bind(query: str, params: list[object], literals: Transformer) -> bytes:
    """``query`` with each ``%s`` placeholder replaced by the literal of its
    parameter, in order, as ``literals`` (psycopg's adapters for the
    connection) quotes it. A non-negative int that fits PostgreSQL's bigint
    is written as its digits, which is what psycopg writes for it; every other
    value (text, NULL, a negative number, whose minus sign must not meet
    another and start a comment) goes through psycopg. The query may hold no
    other ``%``."""
    quote = literals.as_literal
    return query.encode() % tuple(
        [
            b"%d" % value
            if type(value) is int and 0 <= value <= INT8_MAX
            else quote(value)
            for value in params
        ]
    )


class DatabaseTimeout(RuntimeError):
    """PostgreSQL did not answer a round trip in time."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL saying its disk is full."""
    return getattr(exc, "sqlstate", None) == DISK_FULL


class SharedChatDatabase:
    """One asyncio connection to the PostgreSQL database of ``db`` (the same
    parameters peewee connects with), opened on first use and again after it
    broke. One query at a time: the chat store commits one batch at a time."""

    def __init__(self, db: peewee.PostgresqlDatabase) -> None:
        self._db = db
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._literals: Transformer | None = None

    @property
    def broken(self) -> bool:
        """Whether the last connection broke (a new one is opened next); a
        round trip that timed out is not retried (:class:`DatabaseTimeout`)."""
        return self._connection is not None and self._connection.closed

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = self._connection
        if connection is None or connection.closed:
            from psycopg import AsyncConnection

            db = self._db
            params: dict[str, Any] = dict(db.connect_params)
            if db.database.startswith("postgresql://"):
                params.setdefault("conninfo", db.database)
            else:
                params.setdefault("dbname", db.database)
            params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
            connection = await AsyncConnection.connect(autocommit=True, **params)
            self._connection = connection
            self._literals = None
        return connection

    async def run(self, query: str, params: list[object]) -> list[tuple[Any, ...]]:
        """Send one query string of one or more statements; the rows of the
        last one (none for a statement that returns no rows). Raises
        :class:`DatabaseTimeout`, the connection dropped, when PostgreSQL
        takes over :data:`ROUND_TRIP_TIMEOUT_S`."""
        try:
            return await asyncio.wait_for(
                self._run(query, params), ROUND_TRIP_TIMEOUT_S
            )
        except TimeoutError:
            await self.close()
            raise DatabaseTimeout(
                f"the database did not answer within {ROUND_TRIP_TIMEOUT_S:g} s"
            ) from None

    async def _run(self, query: str, params: list[object]) -> list[tuple[Any, ...]]:
        from psycopg import AsyncClientCursor
        from psycopg.adapt import Transformer

        connection = await self._connect()
        if self._literals is None:
            self._literals = Transformer.from_context(connection)
        cursor = AsyncClientCursor(connection)
        await cursor.execute(bind(query, params, self._literals))
        while cursor.nextset():
            pass  # to the last statement's result
        return await cursor.fetchall() if cursor.description else []

    async def abort(self) -> None:
        """End what a failed batch left open: roll back its transaction, or
        drop a connection that cannot (the next batch opens another)."""
        connection = self._connection
        if connection is None or connection.closed:
            return
        from psycopg import Error
        from psycopg.pq import TransactionStatus

        if connection.info.transaction_status == TransactionStatus.IDLE:
            return
        try:
            await connection.execute("ROLLBACK")
        except Error:
            await self.close()

    async def close(self) -> None:
        """Close the connection (a later query opens a new one)."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            await connection.close()
