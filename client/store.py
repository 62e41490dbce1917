"""The client's local database: chat history with full-text search, the outbox of
messages not yet accepted by the server, and what has been seen per peer.

SQLite through peewee, in the user's home, on one thread of its own so the event
loop never waits on disk. History survives restarts; so do unsent messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import peewee

__all__ = ["LocalMessage", "LocalStore"]

T = TypeVar("T")

PENDING = "pending"
"""Outgoing, not yet accepted by the server (it will be sent again)."""
SENT = "sent"
"""Outgoing, committed by the server."""
DELIVERED = "delivered"
"""Outgoing, stored by the recipient's client."""
READ = "read"
"""Outgoing, read by the recipient."""
FAILED = "failed"
"""Outgoing, refused by the server (not friends, too large); not retried."""
RECEIVED = "received"
"""Incoming."""


@dataclass(frozen=True, slots=True)
class LocalMessage:
    """One message of the local history. ``seq`` is the server's order in the
    conversation (None while pending); times are Unix milliseconds."""

    id: int
    peer: str
    outgoing: bool
    seq: int | None
    client_id: str
    text: str
    sent_ms: int
    state: str


def _models(
    db: peewee.Database,
) -> tuple[type[peewee.Model], type[peewee.Model], type[peewee.Model]]:
    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class StoredMessage(Base):
        peer = peewee.CharField(index=True)
        outgoing = peewee.BooleanField()
        seq = peewee.BigIntegerField(null=True)
        client_id = peewee.CharField()
        text = peewee.TextField()
        sent_ms = peewee.BigIntegerField()
        state = peewee.CharField()

        class Meta:
            indexes = (
                (("peer", "outgoing", "client_id"), True),
                (("peer", "seq"), False),
            )

    class Setting(Base):
        key = peewee.CharField(primary_key=True)
        value = peewee.TextField()

    class StoredTransfer(Base):
        """An upload or download, kept until it finishes so it can resume."""

        direction = peewee.CharField()
        file_id = peewee.CharField(null=True, index=True)
        peer = peewee.CharField()
        name = peewee.CharField()
        path = peewee.CharField()
        size = peewee.BigIntegerField()
        sha256 = peewee.CharField(null=True)
        done = peewee.BigIntegerField(default=0)
        state = peewee.CharField()
        instant = peewee.BooleanField(default=False)
        error = peewee.TextField(default="")
        created_ms = peewee.BigIntegerField()
        updated_ms = peewee.BigIntegerField()

    return StoredMessage, Setting, StoredTransfer


class LocalStore:
    """One user's local database (``home/history.db``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = peewee.SqliteDatabase(
            str(path),
            pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1},
        )
        self.Message, self.Setting, self.Transfer = _models(self.db)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        self.db.connect(reuse_if_open=True)
        self.db.create_tables([self.Message, self.Setting, self.Transfer])
        self.db.execute_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts "
            "USING fts5(text, tokenize='unicode61')"
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        def _close() -> None:
            self.db.close()

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    # -- conversions (store thread) ---------------------------------------------

    @staticmethod
    def _local(row: Any) -> LocalMessage:
        return LocalMessage(
            id=row.id,
            peer=row.peer,
            outgoing=row.outgoing,
            seq=row.seq,
            client_id=row.client_id,
            text=row.text,
            sent_ms=row.sent_ms,
            state=row.state,
        )

    # -- writes (store thread) ------------------------------------------------

    def add_outgoing(
        self, peer: str, client_id: str, text: str, now_ms: int
    ) -> LocalMessage:
        """Record a message before it is sent, so a crash cannot lose it."""
        with self.db.atomic():
            row = self.Message.create(
                peer=peer,
                outgoing=True,
                seq=None,
                client_id=client_id,
                text=text,
                sent_ms=now_ms,
                state=PENDING,
            )
            self.db.execute_sql(
                "INSERT INTO message_fts(rowid, text) VALUES (?, ?)", (row.id, text)
            )
        return self._local(row)

    def outgoing_by_client_id(self, peer: str, client_id: str) -> LocalMessage | None:
        """Our message to ``peer`` named ``client_id``, if it was stored."""
        row = self.Message.get_or_none(
            (self.Message.peer == peer)
            & (self.Message.outgoing == True)  # noqa: E712
            & (self.Message.client_id == client_id)
        )
        return None if row is None else self._local(row)

    def mark_sent(self, peer: str, client_id: str, seq: int, sent_ms: int) -> None:
        self.Message.update(seq=seq, sent_ms=sent_ms, state=SENT).where(
            (self.Message.peer == peer)
            & (self.Message.outgoing == True)  # noqa: E712
            & (self.Message.client_id == client_id)
            & (self.Message.state == PENDING)
        ).execute()

    def mark_failed(self, peer: str, client_id: str) -> None:
        self.Message.update(state=FAILED).where(
            (self.Message.peer == peer)
            & (self.Message.outgoing == True)  # noqa: E712
            & (self.Message.client_id == client_id)
        ).execute()

    def add_incoming(self, messages: list[tuple[str, int, str, str, int]]) -> int:
        """Store received messages (peer, seq, client_id, text, sent_ms), ignoring
        ones already stored; return how many were new."""
        added = 0
        with self.db.atomic():
            for peer, seq, client_id, text, sent_ms in messages:
                duplicate = (
                    self.Message.select()
                    .where(
                        (self.Message.peer == peer)
                        & (self.Message.outgoing == False)  # noqa: E712
                        & (self.Message.client_id == client_id)
                    )
                    .exists()
                )
                if duplicate:
                    continue
                row = self.Message.create(
                    peer=peer,
                    outgoing=False,
                    seq=seq,
                    client_id=client_id,
                    text=text,
                    sent_ms=sent_ms,
                    state=RECEIVED,
                )
                added += 1
                self.db.execute_sql(
                    "INSERT INTO message_fts(rowid, text) VALUES (?, ?)", (row.id, text)
                )
        return added

    def advance_state(self, peer: str, up_to_seq: int, state: str) -> int:
        """Mark our messages to ``peer`` up to ``up_to_seq`` delivered or read."""
        allowed = [SENT] if state == DELIVERED else [SENT, DELIVERED]
        return int(
            self.Message.update(state=state)
            .where(
                (self.Message.peer == peer)
                & (self.Message.outgoing == True)  # noqa: E712
                & (self.Message.seq <= up_to_seq)
                & (self.Message.state.in_(allowed))
            )
            .execute()
        )

    # -- reads (store thread) -------------------------------------------------

    def get(self, message_id: int) -> LocalMessage:
        """The message with local id ``message_id``."""
        return self._local(self.Message.get_by_id(message_id))

    def pending(self) -> list[LocalMessage]:
        """Outgoing messages not yet accepted, oldest first."""
        query = (
            self.Message.select()
            .where(self.Message.state == PENDING)
            .order_by(self.Message.id)
        )
        return [self._local(row) for row in query]

    def seen(self) -> dict[str, int]:
        """The highest seq received from each peer."""
        query = (
            self.Message.select(self.Message.peer, peewee.fn.MAX(self.Message.seq))
            .where(self.Message.outgoing == False)  # noqa: E712
            .group_by(self.Message.peer)
            .tuples()
        )
        return {peer: int(seq) for peer, seq in query if seq is not None}

    def history(
        self, peer: str, before_id: int | None = None, limit: int = 50
    ) -> list[LocalMessage]:
        """The ``limit`` messages with ``peer`` before ``before_id`` (a local id),
        oldest first; pass the first one's ``id`` to page further back."""
        cond = self.Message.peer == peer
        if before_id is not None:
            cond &= self.Message.id < before_id
        rows = list(
            self.Message.select()
            .where(cond)
            .order_by(self.Message.id.desc())
            .limit(limit)
        )
        return [self._local(row) for row in reversed(rows)]

    def search(
        self, text: str, peer: str | None = None, limit: int = 50
    ) -> list[LocalMessage]:
        """Messages whose text contains the words of ``text`` (full-text, accents
        and case ignored), newest first."""
        words = [w for w in text.split() if w]
        if not words:
            return []
        match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        cursor = self.db.execute_sql(
            "SELECT rowid FROM message_fts WHERE message_fts MATCH ? "
            "ORDER BY rowid DESC LIMIT ?",
            (match, limit * 4 if peer else limit),
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return []
        cond = self.Message.id.in_(ids)
        if peer is not None:
            cond &= self.Message.peer == peer
        rows = (
            self.Message.select()
            .where(cond)
            .order_by(self.Message.id.desc())
            .limit(limit)
        )
        return [self._local(row) for row in rows]

    def latest_messages(self) -> dict[str, LocalMessage]:
        """The newest message of every conversation (as its chat shows it last)."""
        M = self.Message
        newest = M.select(peewee.fn.MAX(M.id)).group_by(M.peer)
        return {
            row.peer: self._local(row) for row in M.select().where(M.id.in_(newest))
        }

    def unread_counts(self) -> dict[str, int]:
        """Incoming messages per peer after the last one we marked read."""
        marks = self.get_json("read_marks", {})
        M = self.Message
        incoming = M.outgoing == False  # noqa: E712
        counts = dict(
            M.select(M.peer, peewee.fn.COUNT(M.id))
            .where(incoming)
            .group_by(M.peer)
            .tuples()
        )
        for peer, read_up_to in marks.items():
            if peer in counts:
                counts[peer] = (
                    M.select()
                    .where(incoming & (M.peer == peer) & (M.seq > read_up_to))
                    .count()
                )
        return {peer: n for peer, n in counts.items() if n}

    # -- settings -------------------------------------------------------------

    def get_json(self, key: str, default: Any) -> Any:
        row = self.Setting.get_or_none(self.Setting.key == key)
        return json.loads(row.value) if row is not None else default

    def set_json(self, key: str, value: Any) -> None:
        self.Setting.replace(key=key, value=json.dumps(value)).execute()
