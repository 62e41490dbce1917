"""The statements a chat commit runs: a fixed few per batch, whatever its size.

Every statement the database thread runs gives up the GIL while the database
works and must win it back from the event loop afterwards, which can take up
to the interpreter's switch interval (5 ms) while the loop is busy; Python
spent building SQL holds the GIL from the loop. Chat messages queued behind a
commit wait for both. So a batch of any size runs one query for retries, one
insert per chunk of messages, one update of the conversations' last seq (on
PostgreSQL in the same statement as the last insert), and one read and one
upsert for all its cursors, as SQL text built once per shape rather than
through peewee's query builder. All functions here run on the database thread.
"""

from __future__ import annotations

import peewee

from .storage.models import Conversation, Cursor, Message

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

MessageRow = tuple[int, int, int, int, str, str, int]
"""conversation id, seq, sender id, recipient id, client id, text, sent (Unix ms)."""


class _Sql:
    """SQL text in the database's own quoting and placeholder, for the
    statements below (peewee's query builder costs more Python per row than
    the database spends on it)."""

    def __init__(self, db: peewee.Database) -> None:
        self.writes_in_cte = isinstance(db, peewee.PostgresqlDatabase)
        """Whether a WITH clause may hold an INSERT (PostgreSQL; not SQLite)."""
        self.param = db.param
        self._quotes = db.quote
        self.message = self.quote(Message._meta.table_name)
        self.cursor = self.quote(Cursor._meta.table_name)
        self.conversation = self.quote(Conversation._meta.table_name)
        self._inserts: dict[int, str] = {}

    def quote(self, name: str) -> str:
        return f"{self._quotes[0]}{name}{self._quotes[1]}"

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)

    def insert_messages(self, rows: int) -> str:
        sql = self._inserts.get(rows)
        if sql is None:
            one = f"({self.params(7)})"
            columns = ", ".join(
                self.quote(name)
                for name in (
                    "conversation_id",
                    "seq",
                    "sender_id",
                    "recipient_id",
                    "client_id",
                    "text",
                    "sent_ms",
                )
            )
            sql = self._inserts[rows] = (
                f"INSERT INTO {self.message} ({columns}) VALUES "
                + ", ".join([one] * rows)
            )
        return sql


_sql_by_db: dict[tuple[str, str, type], _Sql] = {}


def _sql() -> _Sql:
    db = Message._meta.database
    db = getattr(db, "obj", db)  # the database behind the models' proxy
    key = (db.param, db.quote, type(db))
    sql = _sql_by_db.get(key)
    if sql is None:
        sql = _sql_by_db[key] = _Sql(db)
    return sql


def _execute(sql: str, params: list[object]) -> list[tuple]:
    return list(Message._meta.database.execute_sql(sql, params).fetchall())


def insert_messages(rows: list[MessageRow], last_seqs: dict[int, int]) -> None:
    """Insert ``rows`` with one statement per :data:`CHUNK` rows and set the
    ``last_seq`` of conversations (id -> seq): on PostgreSQL in the statement
    of the last chunk (one wait for the server fewer), else in one more."""
    sql = _sql()
    chunks = [rows[start : start + CHUNK] for start in range(0, len(rows), CHUNK)]
    update = _update_last_seqs(sql, last_seqs) if last_seqs else None
    for i, chunk in enumerate(chunks):
        statement = sql.insert_messages(len(chunk))
        params: list[object] = [value for row in chunk for value in row]
        if update is not None and sql.writes_in_cte and i == len(chunks) - 1:
            statement = f"WITH inserted AS ({statement}) {update[0]}"
            params += update[1]
            update = None
        Message._meta.database.execute_sql(statement, params)
    if update is not None:
        Message._meta.database.execute_sql(*update)


def already_stored(
    by_sender: dict[int, set[str]],
) -> dict[tuple[int, str], tuple[int, int]]:
    """(sender, client id) -> (seq, sent ms) of the messages of ``by_sender``
    that are stored already (retries), one query per :data:`CHUNK` ids."""
    sql = _sql()
    existing: dict[tuple[int, str], tuple[int, int]] = {}
    pieces = [
        (sender, ids[start : start + CHUNK])
        for sender, client_ids in by_sender.items()
        for ids in [sorted(client_ids)]
        for start in range(0, len(ids), CHUNK)
    ]
    while pieces:
        terms: list[str] = []
        params: list[object] = []
        count = 0
        while pieces and (not terms or count + len(pieces[0][1]) <= CHUNK):
            sender, ids = pieces.pop(0)
            count += len(ids)
            terms.append(
                f"(sender_id = {sql.param} AND client_id IN ({sql.params(len(ids))}))"
            )
            params += [sender, *ids]
        query = (
            f"SELECT sender_id, client_id, seq, sent_ms FROM {sql.message} "
            "WHERE " + " OR ".join(terms)
        )
        for sender, client_id, seq, sent_ms in _execute(query, params):
            existing[(sender, client_id)] = (seq, sent_ms)
    return existing


def _update_last_seqs(sql: _Sql, last: dict[int, int]) -> tuple[str, list[object]]:
    """The statement (and its parameters) that sets the ``last_seq`` of
    conversations (id -> seq)."""
    cases = " ".join([f"WHEN {sql.param} THEN {sql.param}"] * len(last))
    params: list[object] = [value for item in last.items() for value in item]
    return (
        f"UPDATE {sql.conversation} SET last_seq = CASE id {cases} END "
        f"WHERE id IN ({sql.params(len(last))})",
        params + list(last),
    )


def read_cursors(
    pairs: set[tuple[int, int]],
) -> dict[tuple[int, int], tuple[int, int]]:
    """(recipient, sender) -> (delivered seq, read seq) of the stored cursors of
    ``pairs``; one query per :data:`CHUNK` pairs."""
    sql = _sql()
    found: dict[tuple[int, int], tuple[int, int]] = {}
    ordered = sorted(pairs)
    term = f"(recipient_id = {sql.param} AND sender_id = {sql.param})"
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        query = (
            f"SELECT recipient_id, sender_id, delivered_seq, read_seq "
            f"FROM {sql.cursor} WHERE " + " OR ".join([term] * len(chunk))
        )
        params = [value for pair in chunk for value in pair]
        for recipient, sender, delivered, read in _execute(query, params):
            found[(recipient, sender)] = (delivered, read)
    return found


def write_cursors(cursors: dict[tuple[int, int], tuple[int, int]]) -> None:
    """Create or move forward the cursors (recipient, sender) -> (delivered,
    read) in one statement per chunk. A cursor never moves back, even when
    another server node moved it further meanwhile."""
    sql = _sql()
    items = sorted(cursors.items())
    one = f"({sql.params(4)})"
    keep_greater = " ".join(
        f"{column} = CASE WHEN excluded.{column} > {sql.cursor}.{column} "
        f"THEN excluded.{column} ELSE {sql.cursor}.{column} END,"
        for column in ("delivered_seq", "read_seq")
    ).rstrip(",")
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        Message._meta.database.execute_sql(
            f"INSERT INTO {sql.cursor} (recipient_id, sender_id, delivered_seq, "
            "read_seq) VALUES " + ", ".join([one] * len(chunk)) + " ON CONFLICT "
            f"(recipient_id, sender_id) DO UPDATE SET {keep_greater}",
            [value for pair, seqs in chunk for value in (*pair, *seqs)],
        )
