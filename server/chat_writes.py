"""The statements a chat commit runs: a fixed few per batch, whatever its size.

Every statement the database thread runs gives up the GIL while the database
works and must win it back from the event loop afterwards, which can take up to
the interpreter's switch interval (5 ms) while the loop is busy. A commit that
ran a statement or three per delivery ack, and built each multi-row insert
value by value in peewee, spent most of its time waiting for the GIL, and the
chat messages queued behind it waited with it. So a batch of any size runs one
query for retries, one insert per chunk of messages (SQL text built once per
chunk size), one read and one upsert for all its cursors, and one update of the
conversations' last seq. All functions here run on the database thread.
"""

from __future__ import annotations

import operator
from functools import reduce

import peewee

from .storage.models import Cursor, Message

__all__ = [
    "CHUNK",
    "MessageRow",
    "already_stored",
    "insert_messages",
    "read_cursors",
    "write_cursors",
]

CHUNK = 200
"""Rows per statement (SQLite allows 32,766 parameters; 7 per message row)."""

_MESSAGE_COLUMNS = (
    Message.conversation,
    Message.seq,
    Message.sender,
    Message.recipient,
    Message.client_id,
    Message.text,
    Message.sent_ms,
)

MessageRow = tuple[int, int, int, int, str, str, int]
"""conversation id, seq, sender id, recipient id, client id, text, sent (Unix ms)."""


def _insert_sql(db: peewee.Database, rows: int) -> str:
    """``INSERT INTO message (...) VALUES (?, ...), ...`` for ``rows`` rows."""

    def quote(name: str) -> str:
        return f"{db.quote[0]}{name}{db.quote[1]}"

    columns = ", ".join(quote(field.column_name) for field in _MESSAGE_COLUMNS)
    one = "(" + ", ".join([db.param] * len(_MESSAGE_COLUMNS)) + ")"
    table = quote(Message._meta.table_name)
    return f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)


_insert_cache: dict[tuple[str, str, int], str] = {}
"""SQL text by (placeholder, quote characters, row count)."""


def insert_messages(rows: list[MessageRow]) -> None:
    """Insert ``rows`` with one statement per :data:`CHUNK` rows."""
    db = Message._meta.database
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        key = (db.param, db.quote, len(chunk))
        sql = _insert_cache.get(key)
        if sql is None:
            sql = _insert_cache[key] = _insert_sql(db, len(chunk))
        db.execute_sql(sql, [value for row in chunk for value in row])


def already_stored(
    by_sender: dict[int, set[str]],
) -> dict[tuple[int, str], tuple[int, int]]:
    """(sender, client id) -> (seq, sent ms) of the messages of ``by_sender``
    that are stored already (retries), in as few queries as the chunk allows."""
    existing: dict[tuple[int, str], tuple[int, int]] = {}
    pieces = [
        (sender, ids[start : start + CHUNK])
        for sender, client_ids in by_sender.items()
        for ids in [sorted(client_ids)]
        for start in range(0, len(ids), CHUNK)
    ]
    while pieces:
        group, count = [], 0
        while pieces and (not group or count + len(pieces[0][1]) <= CHUNK):
            sender, ids = pieces.pop(0)
            group.append((Message.sender == sender) & Message.client_id.in_(ids))
            count += len(ids)
        query = Message.select(
            Message.sender, Message.client_id, Message.seq, Message.sent_ms
        ).where(reduce(operator.or_, group))
        for sender, client_id, seq, sent_ms in query.tuples():
            existing[(sender, client_id)] = (seq, sent_ms)
    return existing


def read_cursors(
    pairs: set[tuple[int, int]],
) -> dict[tuple[int, int], tuple[int, int]]:
    """(recipient, sender) -> (delivered seq, read seq) of the stored cursors of
    ``pairs``; one query per :data:`CHUNK` pairs."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    ordered = sorted(pairs)
    for start in range(0, len(ordered), CHUNK):
        match = reduce(
            operator.or_,
            (
                (Cursor.recipient == recipient) & (Cursor.sender == sender)
                for recipient, sender in ordered[start : start + CHUNK]
            ),
        )
        query = Cursor.select(
            Cursor.recipient, Cursor.sender, Cursor.delivered_seq, Cursor.read_seq
        ).where(match)
        for recipient, sender, delivered, read in query.tuples():
            found[(recipient, sender)] = (delivered, read)
    return found


def write_cursors(cursors: dict[tuple[int, int], tuple[int, int]]) -> None:
    """Create or move forward the cursors (recipient, sender) -> (delivered,
    read) in one statement per chunk. A cursor never moves back, even when
    another server node moved it further meanwhile."""
    items = sorted(cursors.items())
    excluded = peewee.EXCLUDED
    for start in range(0, len(items), CHUNK):
        rows = [
            {
                "recipient": recipient,
                "sender": sender,
                "delivered_seq": delivered,
                "read_seq": read,
            }
            for (recipient, sender), (delivered, read) in items[start : start + CHUNK]
        ]
        Cursor.insert_many(rows).on_conflict(
            conflict_target=[Cursor.recipient, Cursor.sender],
            update={
                Cursor.delivered_seq: _greater(
                    Cursor.delivered_seq, excluded.delivered_seq
                ),
                Cursor.read_seq: _greater(Cursor.read_seq, excluded.read_seq),
            },
        ).execute()


def _greater(current: peewee.Node, proposed: peewee.Node) -> peewee.Node:
    """The larger of two columns, in SQL both SQLite and PostgreSQL run."""
    return peewee.Case(None, [(proposed > current, proposed)], current)
