"""Durable chat storage with group commit.

Every send, delivery ack and read mark is queued; one writer commits everything
queued so far in a single transaction, then resolves the callers' futures. A
message is acknowledged only after that commit, yet a busy server pays for one
commit per batch, not one per message. On this node's own database (SQLite)
the transaction runs on the database thread; on a database shared by nodes
(PostgreSQL) it is two round trips sent from the event loop on the store's
own connection (:mod:`server.chat_shared`).

The writer also assigns sequence numbers, one batch at a time, in queue
order, so the order of a conversation is exactly the order in which the server
accepted its messages (on a shared database under the lock of the
conversations' rows, so nodes never give out a seq twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import peewee

from codec.errors import ErrorCode

from .chat_shared import DatabaseTimeout, SharedChatDatabase, is_disk_full
from .chat_writes import (
    MessageRow,
    already_stored,
    insert_messages,
    read_conversations,
    read_cursors,
    shared_read_query,
    shared_read_rows,
    shared_write_query,
    write_cursors,
)
from .errors import ServiceError
from .storage.models import Conversation, Cursor, Message, User
from .storage.prepared import Prepared
from .timeutil import now_ms

if TYPE_CHECKING:
    from .storage import Storage

__all__ = ["ChatStore", "SendResult"]

log = logging.getLogger("quicmeet.chat")

MAX_BATCH = 2000
MAX_KNOWN_CONVERSATIONS = 100_000
"""Conversations a node remembers as committed (about 100 bytes each); past
that it forgets them all and learns them again, one creation each."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """The committed message: its ``seq`` in the conversation and time (Unix ms)."""

    seq: int
    sent_ms: int
    duplicate: bool


@dataclass(slots=True)
class _Send:
    sender: int
    recipient: int
    client_id: str
    text: str
    future: asyncio.Future[SendResult]


@dataclass(slots=True)
class _Cursor:
    recipient: int
    sender: int
    delivered: int
    read: int
    future: asyncio.Future[tuple[int, int] | None] = field(repr=False)


class ChatStore:
    """Queues chat writes and commits them in batches."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pending: list[_Send | _Cursor] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conversations: dict[tuple[int, int], list[int]] = {}
        """(low, high) user ids -> [conversation id, last seq]: on this node's
        own database kept between transactions (database thread); on a shared
        one what the batch in progress locked and read (event loop)."""
        db = storage.db
        self._shared_db = (
            SharedChatDatabase(db)
            if isinstance(db, peewee.PostgresqlDatabase)
            else None
        )
        """The store's own connection to a database other server nodes write
        too (None: this node's own SQLite). Then each transaction locks the
        rows of the conversations it touches and reads their last seq afresh,
        instead of keeping it between transactions."""
        self._committing = False
        """Whether a batch is being committed (``stop`` waits for it)."""
        self._existing: set[tuple[int, int]] = set()
        """(low, high) of the conversations known to be committed: a shared
        database's batch creates only the others."""
        self.batches = 0
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        while self._pending or self._committing:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        self._task.cancel()
        self._task = None
        if self._shared_db is not None:
            await self._shared_db.close()

    def send(
        self, sender: int, recipient: int, client_id: str, text: str
    ) -> asyncio.Future[SendResult]:
        """Queue a message; the future resolves once it is committed."""
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Send(sender, recipient, client_id, text, future))
        self._wakeup.set()
        return future

    def advance(
        self, recipient: int, sender: int, delivered: int = 0, read: int = 0
    ) -> asyncio.Future[tuple[int, int] | None]:
        """Move the delivered/read cursors of sender→recipient forward (never back,
        never past the conversation's last message); the future gives the cursors
        (delivered, read) after the commit, or None when the two never chatted."""
        future: asyncio.Future[tuple[int, int] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append(
            _Cursor(recipient, sender, max(delivered, read), read, future)
        )
        self._wakeup.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._committing = True
                try:
                    if self._shared_db is not None:
                        results = await self._commit_shared(batch, self._shared_db)
                    else:
                        results = await self.storage.run(self._commit_local, batch)
                except Exception as exc:
                    error = _storage_error(exc)
                    for op in batch:
                        if not op.future.done():
                            op.future.set_exception(error)
                    continue
                finally:
                    self._committing = False
                self.batches += 1
                self.committed += len(batch)
                for op, result in zip(batch, results, strict=True):
                    if not op.future.done():
                        op.future.set_result(result)  # type: ignore[arg-type]

    def _conversation(self, a: int, b: int) -> list[int]:
        """The [id, last seq] of the conversation of ``a`` and ``b``; on this
        node's own database, created when missing (database thread)."""
        key = _low_high(a, b)
        entry = self._conversations.get(key)
        if entry is None:
            assert self._shared_db is None, "a shared batch reads them first"
            conv, _ = Conversation.get_or_create(user_low=key[0], user_high=key[1])
            entry = [int(conv.id), int(conv.last_seq)]
            self._conversations[key] = entry
        return entry

    def _committed(self, touched: dict[tuple[int, int], list[int]]) -> None:
        """Remember the conversations a batch committed to (bounded)."""
        if len(self._existing) + len(touched) > MAX_KNOWN_CONVERSATIONS:
            self._existing.clear()
        self._existing.update(touched)

    # -- this node's own database, on the database thread -----------------------

    def _commit_local(self, batch: list[_Send | _Cursor]) -> list[object]:
        """A database of this node alone: what it holds of the conversations
        stays true between transactions; a few statements per batch."""
        touched: dict[tuple[int, int], list[int]] = {}
        try:
            with Message._meta.database.atomic():
                results = self._apply_local(batch, touched)
        except Exception:
            for key in touched:
                self._conversations.pop(key, None)
            raise
        self._committed(touched)
        return results

    def _apply_local(
        self, batch: list[_Send | _Cursor], touched: dict[tuple[int, int], list[int]]
    ) -> list[object]:
        by_sender, cursor_pairs = _requests(batch)
        existing = already_stored(by_sender)
        cursors = read_cursors(cursor_pairs) if cursor_pairs else {}
        unknown = {
            _low_high(*pair)
            for pair in cursor_pairs
            if _low_high(*pair) not in self._conversations
        }
        if unknown:
            # A cursor only needs the last seq to clamp to: one statement for
            # the batch instead of one per cursor.
            self._conversations.update(read_conversations(unknown))
        rows, moved, results = self._assign(batch, existing, cursors, touched)
        insert_messages(rows, {conv_id: seq for conv_id, seq in touched.values()})
        if moved:
            write_cursors(moved)
        return results

    # -- a database shared by nodes, from the event loop --------------------------

    async def _commit_shared(
        self, batch: list[_Send | _Cursor], db: SharedChatDatabase
    ) -> list[object]:
        """A database other nodes write too: the batch locks the conversations
        it touches and reads their last seq afresh, in two round trips that
        the event loop waits for (:mod:`server.chat_shared`). A batch whose
        connection broke is committed again on a new one: its messages are
        found stored if the first try committed them (a retry), its cursors
        never move back."""
        for attempt in (1, 2):
            try:
                return await self._commit_shared_once(batch, db)
            except Exception:
                if attempt == 2 or not db.broken:
                    raise
                log.warning("chat commit: the database connection broke; again")
        raise AssertionError("unreachable")

    async def _commit_shared_once(
        self, batch: list[_Send | _Cursor], db: SharedChatDatabase
    ) -> list[object]:
        by_sender, cursor_pairs = _requests(batch)
        messaged = {
            _low_high(op.sender, op.recipient) for op in batch if isinstance(op, _Send)
        }
        lock = messaged | {_low_high(*pair) for pair in cursor_pairs}
        create = messaged - self._existing
        touched: dict[tuple[int, int], list[int]] = {}
        try:
            state = shared_read_rows(
                await db.run(*shared_read_query(create, lock, by_sender, cursor_pairs))
            )
            gone = messaged - state[0].keys()
            if gone:
                # Remembered as committed, deleted since (with a user): begin
                # again, creating them (no such user: the batch fails).
                await db.abort()
                self._existing -= gone
                state = shared_read_rows(
                    await db.run(
                        *shared_read_query(create | gone, lock, by_sender, cursor_pairs)
                    )
                )
            self._conversations = state[0]
            rows, moved, results = self._assign(batch, state[1], state[2], touched)
            await db.run(
                *shared_write_query(
                    rows, {conv_id: seq for conv_id, seq in touched.values()}, moved
                )
            )
        except BaseException:
            await db.abort()
            raise
        finally:
            self._conversations = {}
        self._committed(touched)
        return results

    # -- both ---------------------------------------------------------------------

    def _assign(
        self,
        batch: list[_Send | _Cursor],
        existing: dict[tuple[int, str], tuple[int, int]],
        cursors: dict[tuple[int, int], tuple[int, int]],
        touched: dict[tuple[int, int], list[int]],
    ) -> tuple[list[MessageRow], dict[tuple[int, int], tuple[int, int]], list[object]]:
        """Number the batch's new messages and move its cursors, in queue
        order: the rows to insert, the cursors to write and each op's result."""
        moved: dict[tuple[int, int], tuple[int, int]] = {}
        now = now_ms()
        rows: list[MessageRow] = []
        results: list[object] = []
        for op in batch:
            if isinstance(op, _Cursor):
                results.append(self._advance(op, cursors, moved))
                continue
            key = (op.sender, op.client_id)
            if key in existing:
                seq, sent = existing[key]
                results.append(SendResult(seq, sent, True))
                continue
            conv = self._conversation(op.sender, op.recipient)
            touched[_low_high(op.sender, op.recipient)] = conv
            conv[1] += 1
            existing[key] = (conv[1], now)
            rows.append(
                (conv[0], conv[1], op.sender, op.recipient, op.client_id, op.text, now)
            )
            results.append(SendResult(conv[1], now, False))
        return rows, moved, results

    def _advance(
        self,
        op: _Cursor,
        cursors: dict[tuple[int, int], tuple[int, int]],
        moved: dict[tuple[int, int], tuple[int, int]],
    ) -> tuple[int, int] | None:
        """Move one cursor in ``cursors`` (read for the whole batch), noting in
        ``moved`` what the batch must write; None when the two never chatted."""
        key = _low_high(op.sender, op.recipient)
        entry = self._conversations.get(key)
        if entry is None:
            if self._shared_db is not None:  # the batch read all it touches
                return None
            conv = Conversation.get_or_none(user_low=key[0], user_high=key[1])
            if conv is None:
                return None
            entry = [int(conv.id), int(conv.last_seq)]
            self._conversations[key] = entry
        last_seq = entry[1]
        pair = (op.recipient, op.sender)
        old_delivered, old_read = cursors.get(pair, (0, 0))
        delivered = max(old_delivered, min(op.delivered, last_seq))
        read = max(old_read, min(op.read, last_seq))
        if pair not in cursors or (delivered, read) != (old_delivered, old_read):
            cursors[pair] = moved[pair] = (delivered, read)
        return delivered, read

    # -- reads and housekeeping (database thread, through Storage.run) -------------

    @staticmethod
    def unseen_for(
        recipient: int,
        seen: dict[int, int],
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Message]:
        """One page of the messages to ``recipient`` past what it has ``seen`` (per
        sender id), ordered by sender then seq, starting after ``after``
        (sender id, seq). Every login asks: the SQL of each shape (how many
        senders seen, a first page or a later one) is built once."""
        shape = (len(seen), after is not None)
        query = _UNSEEN.get(shape)
        if query is None:
            query = Prepared(
                _unseen(*shape), *[int] * (2 + 3 * len(seen) + 3 * shape[1])
            )
            if len(_UNSEEN) < _UNSEEN_SHAPES:
                _UNSEEN[shape] = query
        values = [recipient, limit, *seen]
        for sender, seq in seen.items():
            values += (sender, seq)
        if after is not None:
            values += (after[0], after[0], after[1])
        return query(*values)

    @staticmethod
    def purge(retention_ms: int) -> int:
        """Delete delivered messages older than the retention; return how many."""
        cutoff = now_ms() - retention_ms
        delivered = Cursor.select(Cursor.delivered_seq).where(
            (Cursor.recipient == Message.recipient) & (Cursor.sender == Message.sender)
        )
        return int(
            Message.delete()
            .where((Message.sent_ms < cutoff) & (Message.seq <= delivered))
            .execute()
        )


def _low_high(a: int, b: int) -> tuple[int, int]:
    """The key of the conversation of users ``a`` and ``b``: (low, high) id."""
    return (a, b) if a < b else (b, a)


def _requests(
    batch: list[_Send | _Cursor],
) -> tuple[dict[int, set[str]], set[tuple[int, int]]]:
    """What a batch must read: the client ids of its messages by sender (to
    find retries) and the (recipient, sender) of its cursors."""
    by_sender: dict[int, set[str]] = {}
    cursor_pairs: set[tuple[int, int]] = set()
    for op in batch:
        if isinstance(op, _Send):
            by_sender.setdefault(op.sender, set()).add(op.client_id)
        else:
            cursor_pairs.add((op.recipient, op.sender))
    return by_sender, cursor_pairs


def _storage_error(exc: Exception) -> ServiceError:
    if isinstance(exc, DatabaseTimeout):
        log.error("chat commit: %s", exc)
        return ServiceError(
            ErrorCode.BUSY, "the database did not answer in time; retry shortly", 1000
        )
    text = str(exc).lower()
    if (isinstance(exc, peewee.OperationalError) and "full" in text) or is_disk_full(
        exc
    ):
        log.error("chat storage is full: %s", exc)
        return ServiceError(ErrorCode.STORAGE_FULL, "the server's storage is full")
    log.exception("chat commit failed", exc_info=exc)
    return ServiceError(ErrorCode.INTERNAL, "could not store the message")


_UNSEEN_SHAPES = 64
"""How many shapes of :meth:`ChatStore.unseen_for`'s query keep their SQL
(a user with more friends seen than this still gets his page, built anew)."""
_UNSEEN: dict[tuple[int, bool], Prepared] = {}


def _unseen(senders: int, paged: bool) -> Callable[..., peewee.Query]:
    """The unseen query for ``senders`` senders seen, with a page's start
    or without; its values: recipient, limit, the senders (for the ones never
    seen), each (sender, seq) seen, and the start (sender, sender, seq)."""

    def build(recipient: int, limit: int, *values: int) -> peewee.Query:
        excluded = values[:senders]
        pairs = values[senders : 3 * senders]
        unseen = (
            Message.sender.not_in(list(excluded)) if senders else Message.sender > 0
        )
        for i in range(senders):
            unseen |= (Message.sender == pairs[2 * i]) & (
                Message.seq > pairs[2 * i + 1]
            )
        cond = (Message.recipient == recipient) & unseen
        if paged:
            first, same, seq = values[3 * senders :]
            cond &= (Message.sender > first) | (
                (Message.sender == same) & (Message.seq > seq)
            )
        return (
            Message.select(Message, User)
            .join(User, on=Message.sender)
            .where(cond)
            .order_by(Message.sender, Message.seq)
            .limit(limit)
        )

    return build
