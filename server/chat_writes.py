"""The statements a chat commit runs: a fixed few per batch, whatever its size.

On the node's own database (SQLite), every statement the database thread
runs gives up the GIL while the database works and must win it back from
the event loop afterwards, which can take up to the interpreter's switch
interval (5 ms) while the loop is busy; Python spent building SQL holds the
GIL from the loop. Chat messages queued behind a commit wait for both. So a
batch of any size runs one query for retries, one insert per chunk of
messages, one update of the conversations' last seq, and one read and one
upsert for all its cursors, as SQL text built once per shape rather than
through peewee's query builder.

A database shared by several nodes (PostgreSQL) is farther away, a wait per
statement: there a batch's transaction is two round trips, each one query
string of several statements (:func:`shared_read_query`,
:func:`shared_write_query`), which :mod:`server.chat_shared` sends from the
event loop. The functions here that run statements run on the database
thread; those that build the shared queries only build them.
"""

from __future__ import annotations

import peewee

from .storage.models import Conversation, Cursor, Message

__all__ = [
    "CHUNK",
    "MessageRow",
    "already_stored",
    "insert_messages",
    "read_conversations",
    "read_cursors",
    "shared_read_query",
    "shared_read_rows",
    "shared_write_query",
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
    ``last_seq`` of conversations (id -> seq) in one more."""
    sql = _sql()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        Message._meta.database.execute_sql(
            sql.insert_messages(len(chunk)), [value for row in chunk for value in row]
        )
    if last_seqs:
        Message._meta.database.execute_sql(*_update_last_seqs(sql, last_seqs))


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
        chunk: list[tuple[int, list[str]]] = []
        count = 0
        while pieces and (not chunk or count + len(pieces[0][1]) <= CHUNK):
            chunk.append(pieces.pop(0))
            count += len(chunk[-1][1])
        where, params = _retries_where(sql, chunk)
        query = f"SELECT sender_id, client_id, seq, sent_ms FROM {sql.message} {where}"
        for sender, client_id, seq, sent_ms in _execute(query, params):
            existing[(sender, client_id)] = (seq, sent_ms)
    return existing


def _retries_where(
    sql: _Sql, pieces: list[tuple[int, list[str]]]
) -> tuple[str, list[object]]:
    """The WHERE clause matching the messages (sender, client ids) of ``pieces``."""
    terms: list[str] = []
    params: list[object] = []
    for sender, ids in pieces:
        terms.append(
            f"(sender_id = {sql.param} AND client_id IN ({sql.params(len(ids))}))"
        )
        params += [sender, *ids]
    return "WHERE " + " OR ".join(terms), params


def _pairs_where(
    sql: _Sql, columns: tuple[str, str], pairs: list[tuple[int, int]]
) -> tuple[str, list[object]]:
    """The WHERE clause matching the rows whose ``columns`` are one of ``pairs``."""
    term = f"({columns[0]} = {sql.param} AND {columns[1]} = {sql.param})"
    return (
        "WHERE " + " OR ".join([term] * len(pairs)),
        [value for pair in pairs for value in pair],
    )


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


def read_conversations(
    pairs: set[tuple[int, int]],
) -> dict[tuple[int, int], list[int]]:
    """(low, high) -> [id, last seq] of the conversations of ``pairs`` that
    exist; one query per :data:`CHUNK` pairs."""
    sql = _sql()
    rows = _rows_of_pairs(
        sql.conversation, ("user_low_id", "user_high_id"), ("id", "last_seq"), pairs
    )
    return {(low, high): [conv_id, last_seq] for low, high, conv_id, last_seq in rows}


def read_cursors(
    pairs: set[tuple[int, int]],
) -> dict[tuple[int, int], tuple[int, int]]:
    """(recipient, sender) -> (delivered seq, read seq) of the stored cursors of
    ``pairs``; one query per :data:`CHUNK` pairs."""
    sql = _sql()
    rows = _rows_of_pairs(
        sql.cursor,
        ("recipient_id", "sender_id"),
        ("delivered_seq", "read_seq"),
        pairs,
    )
    return {(recipient, sender): (d, r) for recipient, sender, d, r in rows}


def _rows_of_pairs(
    table: str,
    keys: tuple[str, str],
    values: tuple[str, ...],
    pairs: set[tuple[int, int]],
) -> list[tuple]:
    """The rows (both ``keys`` columns, then ``values``) of ``table`` whose
    keys are one of ``pairs``; one query per :data:`CHUNK` pairs."""
    sql = _sql()
    found: list[tuple] = []
    ordered = sorted(pairs)
    columns = ", ".join((*keys, *values))
    for start in range(0, len(ordered), CHUNK):
        where, params = _pairs_where(sql, keys, ordered[start : start + CHUNK])
        found += _execute(f"SELECT {columns} FROM {table} {where}", params)
    return found


def write_cursors(cursors: dict[tuple[int, int], tuple[int, int]]) -> None:
    """Create or move forward the cursors (recipient, sender) -> (delivered,
    read) in one statement per chunk. A cursor never moves back, even when
    another server node moved it further meanwhile."""
    sql = _sql()
    items = sorted(cursors.items())
    for start in range(0, len(items), CHUNK):
        Message._meta.database.execute_sql(
            *_upsert_cursors(sql, items[start : start + CHUNK])
        )


def _upsert_cursors(
    sql: _Sql, items: list[tuple[tuple[int, int], tuple[int, int]]]
) -> tuple[str, list[object]]:
    """The statement that creates or moves forward the cursors of ``items``
    ((recipient, sender), (delivered, read)), never back."""
    one = f"({sql.params(4)})"
    keep_greater = " ".join(
        f"{column} = CASE WHEN excluded.{column} > {sql.cursor}.{column} "
        f"THEN excluded.{column} ELSE {sql.cursor}.{column} END,"
        for column in ("delivered_seq", "read_seq")
    ).rstrip(",")
    return (
        f"INSERT INTO {sql.cursor} (recipient_id, sender_id, delivered_seq, "
        "read_seq) VALUES " + ", ".join([one] * len(items)) + " ON CONFLICT "
        f"(recipient_id, sender_id) DO UPDATE SET {keep_greater}",
        [value for pair, seqs in items for value in (*pair, *seqs)],
    )


# -- a database shared by nodes: a batch in two round trips ----------------------

SharedState = tuple[
    dict[tuple[int, int], list[int]],
    dict[tuple[int, str], tuple[int, int]],
    dict[tuple[int, int], tuple[int, int]],
]
"""What :func:`shared_read_query` reads: conversations (low, high) -> [id,
last seq], stored messages (sender, client id) -> (seq, sent ms), and
cursors (recipient, sender) -> (delivered seq, read seq)."""


def shared_read_query(
    create: set[tuple[int, int]],
    lock: set[tuple[int, int]],
    by_sender: dict[int, set[str]],
    cursor_pairs: set[tuple[int, int]],
) -> tuple[str, list[object]]:
    """The first round trip of a batch on a shared database: begin the
    transaction, create the conversations (low, high) of ``create`` that do
    not exist, lock those of ``lock`` (in id order, so two nodes never
    deadlock), and read them with the stored messages of ``by_sender``
    (retries) and the cursors of ``cursor_pairs``. Several statements: bind
    the parameters in the client. Read the last statement's rows with
    :func:`shared_read_rows`; the transaction stays open."""
    sql = _sql()
    statements = ["BEGIN"]
    params: list[object] = []
    if create:
        ordered = sorted(create)
        statements.append(
            f"INSERT INTO {sql.conversation} (user_low_id, user_high_id, last_seq) "
            "VALUES "
            + ", ".join([f"({sql.params(2)}, 0)"] * len(ordered))
            + " ON CONFLICT DO NOTHING"
        )
        params += [value for pair in ordered for value in pair]
    where, lock_params = _pairs_where(
        sql, ("user_low_id", "user_high_id"), sorted(lock)
    )
    query = (
        f"WITH locked AS (SELECT id, user_low_id, user_high_id, last_seq "
        f"FROM {sql.conversation} {where} ORDER BY id FOR UPDATE) "
        "SELECT 0, id, user_low_id, user_high_id, last_seq, NULL::text FROM locked"
    )
    params += lock_params
    if by_sender:
        where, retry_params = _retries_where(
            sql, [(sender, sorted(ids)) for sender, ids in by_sender.items()]
        )
        query += (
            " UNION ALL SELECT 1, sender_id, seq, sent_ms, 0, client_id "
            f"FROM {sql.message} {where}"
        )
        params += retry_params
    if cursor_pairs:
        where, cursor_params = _pairs_where(
            sql, ("recipient_id", "sender_id"), sorted(cursor_pairs)
        )
        query += (
            " UNION ALL SELECT 2, recipient_id, sender_id, delivered_seq, "
            f"read_seq, NULL FROM {sql.cursor} {where}"
        )
        params += cursor_params
    statements.append(query)
    return "; ".join(statements), params


def shared_read_rows(rows: list[tuple]) -> SharedState:
    """What the rows of :func:`shared_read_query`'s last statement say."""
    conversations: dict[tuple[int, int], list[int]] = {}
    existing: dict[tuple[int, str], tuple[int, int]] = {}
    cursors: dict[tuple[int, int], tuple[int, int]] = {}
    for kind, a, b, c, d, client_id in rows:
        if kind == 0:
            conversations[(b, c)] = [a, d]
        elif kind == 1:
            existing[(a, client_id)] = (b, c)
        else:
            cursors[(a, b)] = (c, d)
    return conversations, existing, cursors


def shared_write_query(
    rows: list[MessageRow],
    last_seqs: dict[int, int],
    cursors: dict[tuple[int, int], tuple[int, int]],
) -> tuple[str, list[object]]:
    """The second round trip of a batch on a shared database: insert
    ``rows``, set the conversations' last seq (id -> seq), create or move
    forward ``cursors``, and commit. Several statements: bind the parameters
    in the client."""
    sql = _sql()
    statements: list[str] = []
    params: list[object] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        statements.append(sql.insert_messages(len(chunk)))
        params += [value for row in chunk for value in row]
    if last_seqs:
        update, update_params = _update_last_seqs(sql, last_seqs)
        statements.append(update)
        params += update_params
    if cursors:
        upsert, upsert_params = _upsert_cursors(sql, sorted(cursors.items()))
        statements.append(upsert)
        params += upsert_params
    statements.append("COMMIT")
    return "; ".join(statements), params
